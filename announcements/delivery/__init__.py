"""Where a decided announcement is queued and sent.

- ``outbox``: delivery rows, written in the deciding transaction; claims and leases.
- ``engine``: drains the outbox through each platform, within its rate limits
  (``config``, ``lanes``, ``sending``, ``batches``: its parts).
- ``throttle``: the pacing of one platform (GCRA).
- ``progress``: the author's live status message and the numbers of ``/crier status``.
- ``corrections``: recall and edit of what was already sent.
"""

from announcements.delivery.engine import DeliveryEngine, EngineConfig, config_from_env

__all__ = ["DeliveryEngine", "EngineConfig", "config_from_env"]
