"""A person's console inbox, read from the database: it survives a restart.

The inbox is the console's delivered rows of the outbox (``Delivery``), oldest
first, each shown as it reads now (acknowledged, decided, edited), through the
same renderers the delivery engine sends with. A recalled or cancelled
message is no longer in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import col

from announcements.compose import RENDERERS
from announcements.delivery.outbox import Claimed
from announcements.types import DeliveryAction, DeliveryStatus, OutboundMessage
from storage.db import Database
from storage.models import Delivery, Person

PLATFORM = "console"
#: The console's message references: ``m`` and a number (``ConsolePlatform``).
REF = re.compile(r"m(\d{1,18})")


@dataclass(frozen=True)
class Letter:
    """One message in a person's inbox: its delivery row, reference and current text."""

    delivery_id: int
    ref: str
    message: OutboundMessage


def letters(db: Database, email: str, now: datetime) -> list[Letter]:
    """Everything delivered to ``email`` on the console that is still there, oldest first."""
    with db.session() as s:
        rows = s.execute(
            select(Delivery).join(Person, col(Person.id) == col(Delivery.person_id))
            .where(func.lower(col(Person.email)) == email.lower(),
                   col(Delivery.platform) == PLATFORM,
                   col(Delivery.message_ref).is_not(None),
                   col(Delivery.status) != DeliveryStatus.RECALLED.value,
                   col(Delivery.action) != DeliveryAction.DELETE.value)
            .order_by(col(Delivery.delivered_at), col(Delivery.id))
        ).scalars().all()
        claimed = [Claimed(r.id or 0, r.announcement_id, r.person_id, r.platform, r.purpose,
                           r.address, r.attempts, r.message_ref) for r in rows]
        said: dict[int, OutboundMessage] = {}
        for purpose in {c.purpose for c in claimed}:
            mine = [c for c in claimed if c.purpose == purpose]
            # As it reads now: rendered as an update; what has no update (an edit request
            # still waiting) as it was sent.
            said |= RENDERERS[purpose](s, mine, now)
            said |= RENDERERS[purpose](
                s, [replace(c, action=DeliveryAction.UPDATE.value) for c in mine], now)
    return [Letter(c.id, c.message_ref or "", said[c.id]) for c in claimed if c.id in said]


def last_ref(db: Database) -> int:
    """The highest console message number stored, so a new process does not reuse one."""
    with db.session() as s:
        refs = s.execute(select(col(Delivery.message_ref)).where(
            col(Delivery.platform) == PLATFORM, col(Delivery.message_ref).is_not(None))
        ).scalars().all()
    return max((int(m.group(1)) for r in refs if r and (m := REF.fullmatch(r))), default=0)
