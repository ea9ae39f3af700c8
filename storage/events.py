"""Idempotency for inbound platform events (Slack retries, Telegram update ids)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError

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
