"""The delivery engine's configuration: ``EngineConfig`` and how ``CRIER_*``
variables set it (``config_from_env``, ``parse_limits``).

Rule: ``CRIER_RATE_LIMIT_<PLATFORM>`` overrides that platform adapter's own limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from announcements.ports import RateLimits

__all__ = ["ENV", "RATE_PREFIX", "CeilingBelowRate", "EngineConfig", "config_from_env",
           "merged_limits", "parse_limits"]


@dataclass
class EngineConfig:
    batch_size: int = 200
    lease: timedelta = timedelta(seconds=120)
    #: A 5xx is usually one bad answer: the first retry comes in 0.5-1 s, and doubling
    #: waits (1, 2, 4, 8, 16, 32 s at most) give up about a minute after the first try.
    max_attempts: int = 7
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    send_timeout: float = 30.0
    #: Requests in flight per lane. A platform answers in 100–300 ms, so a lane needs
    #: rate × latency of them: 32 keep 100–300 messages/s going (docs/delivery.md).
    concurrency: int = 32
    flush_interval: float = 0.05
    flush_size: int = 100
    #: Senders wait while this many results are not yet written (bounds duplicates).
    max_unrecorded: int = 500
    idle_poll: float = 0.5
    #: First wait after a database error; doubles up to ``db_retry_cap``.
    db_retry_base: float = 0.2
    db_retry_cap: float = 10.0
    #: Seconds between updates of the author's live status message.
    progress_interval: float = 5.0
    #: Sends to fewer people finish in seconds and get no live status message.
    progress_min_recipients: int = 100
    #: Seconds between heartbeats; an engine silent for four of them is gone.
    heartbeat_interval: float = 2.0
    #: Overrides of the platforms' own ``limits``, by platform name.
    limits: dict[str, RateLimits] = field(default_factory=dict)


#: ``CRIER_*`` settings of the engine (seconds unless named otherwise).
ENV = {
    "CRIER_DELIVERY_CONCURRENCY": "concurrency",
    "CRIER_DELIVERY_BATCH": "batch_size",
    "CRIER_DELIVERY_MAX_ATTEMPTS": "max_attempts",
    "CRIER_DELIVERY_LEASE": "lease",
    "CRIER_PROGRESS_INTERVAL": "progress_interval",
    "CRIER_PROGRESS_MIN_RECIPIENTS": "progress_min_recipients",
}
RATE_PREFIX = "CRIER_RATE_LIMIT_"


def config_from_env(env: Mapping[str, str]) -> EngineConfig:
    """``EngineConfig`` from ``CRIER_*`` variables; ``CRIER_RATE_LIMIT_SLACK=8,1,10``
    sets a platform's messages per second, per conversation and burst."""
    config = EngineConfig()
    for var, name in ENV.items():
        raw = env.get(var, "").strip()
        if not raw:
            continue
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"{var}={raw!r} is not a number; e.g. {var}=5") from None
        if name == "lease":
            config.lease = timedelta(seconds=number)
        else:
            setattr(config, name, type(getattr(config, name))(number))
    for var, raw in env.items():
        if var.startswith(RATE_PREFIX) and raw.strip():
            config.limits[var.removeprefix(RATE_PREFIX).lower()] = parse_limits(var, raw)
    return config


class CeilingBelowRate(ValueError):
    """A CEILING below PER_SECOND: adaptive pacing could never start."""


def parse_limits(var: str, raw: str) -> RateLimits:
    """``PER_SECOND[,PER_CONVERSATION[,BURST[,CEILING]]]``. A ceiling above the rate makes
    the lane adaptive, equal to it turns adaptation off; below it is an error."""
    try:
        parts = [float(p) for p in raw.split(",")]
        if not 1 <= len(parts) <= 4 or min(parts) < 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"{var}={raw!r} should be PER_SECOND[,PER_CONVERSATION[,BURST"
                         f"[,CEILING]]], e.g. {var}=30,1") from None
    ceiling = parts[3] if len(parts) > 3 else 0.0
    if len(parts) > 3 and ceiling < parts[0]:
        raise CeilingBelowRate(f"{var}={raw!r}: the ceiling {ceiling:g} is below the starting rate "
                         f"{parts[0]:g}; give a CEILING of at least PER_SECOND (equal turns "
                         f"adaptive pacing off), e.g. {var}={parts[0]:g},1,1,{parts[0] * 4:g}")
    return RateLimits(parts[0], parts[1] if len(parts) > 1 else 0,
                      int(parts[2]) if len(parts) > 2 else 1, ceiling)


def merged_limits(override: RateLimits | None, own: RateLimits) -> RateLimits:
    """An operator's ``CRIER_RATE_LIMIT_<PLATFORM>`` over the adapter's limits. Without a
    CEILING the adapter's ceiling stays, if it is above the new rate."""
    if override is None:
        return own
    if override.ceiling:  # given (0 is never valid: it is below any rate)
        return override
    ceiling = own.ceiling if own.ceiling > override.per_second else 0.0
    return RateLimits(override.per_second, override.per_conversation, override.burst, ceiling)

