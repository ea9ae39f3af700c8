"""Domain events: what happened in the domain, announced after it was committed.

Not to be confused with inbound platform events (``storage/events.py``, the
deduplication of Slack and Telegram requests). A room publishes an event once
its transaction has committed; subscribers are registered while the
application is built (``bot/app.py``), never later by patching the publisher.
A subscriber runs in the publisher's thread. If it fails, the committed change
stands, the person still gets their answer and the failure is logged with its
traceback (the scheduler's ``reconcile`` re-creates any job a failed subscriber
did not register).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar


@dataclass(frozen=True)
class Approved:
    """An announcement was approved (its outbox rows, if any, are written)."""

    announcement_id: int


log = logging.getLogger("crier.events")

Event = Approved
E = TypeVar("E", bound=Event)


@dataclass
class EventBus:
    """Typed publish/subscribe within one process."""

    _subscribers: dict[type[Any], list[Callable[[Any], None]]] = field(default_factory=dict)

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> EventBus:
        """Call ``handler`` with every published ``kind``; returns the bus, to chain."""
        self._subscribers.setdefault(kind, []).append(handler)
        return self

    def publish(self, event: Event) -> None:
        for handler in self._subscribers.get(type(event), ()):
            try:
                handler(event)
            except Exception:  # noqa: BLE001 - the change is committed; others still hear
                log.exception("a subscriber to %s failed", event)
