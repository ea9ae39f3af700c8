"""Idempotency for inbound platform events (Slack retries, Telegram update ids)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from storage.db import Database
from storage.models import InboundEvent


def first_time(db: Database, platform: str, event_id: str, now: datetime) -> bool:
    """Record ``event_id``; True the first time it is seen, False for a repeat."""
    try:
        with db.session() as s:
            s.add(InboundEvent(platform=platform, event_id=event_id[:200], received_at=now))
        return True
    except IntegrityError:
        return False


def prune(db: Database, older_than: datetime) -> int:
    """Forget event ids older than any platform retries (Slack: minutes; Telegram: 24 h)."""
    from sqlalchemy import delete

    with db.session() as s:
        result = s.execute(delete(InboundEvent).where(col(InboundEvent.received_at) < older_than))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
