"""Fan-out: the delivery rows of a message to many people, written in the caller's
transaction (``enqueue``), each on the person's first reachable platform.

Rules:
- One row per (announcement, person, platform, purpose). A person gets each
  message on one platform: the first of the configured order on which they are
  reachable. Someone reachable nowhere gets a row marked ``unreachable`` so
  reports count them instead of forgetting them.
- People are looked up a chunk at a time: a 100,000-person audience never sits
  in memory with all its identities at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from announcements.types import BULK_PURPOSES, DeliveryAction, DeliveryStatus, Purpose
from storage.models import Delivery, Identity
from storage.models import Person as PersonRow

CHUNK = 5_000
NO_PLATFORM = "none"
IDENTITY = Identity.__table__  # type: ignore[attr-defined]
PERSON = PersonRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Channels:
    """Which platforms are on, in order of preference.

    ``by_email`` names platforms that address people by their directory email
    (the console); others need a linked identity.
    """

    enabled: tuple[str, ...] = ("console",)
    order: tuple[str, ...] = ("slack", "teams", "telegram", "console")
    by_email: frozenset[str] = field(default_factory=lambda: frozenset({"console"}))

    @property
    def preference(self) -> tuple[str, ...]:
        ranked = [p for p in self.order if p in self.enabled]
        return tuple(ranked + [p for p in self.enabled if p not in ranked])


def _chunks(items: Iterable[int], size: int) -> Iterator[list[int]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def first_reachable(db: Session | Connection, channels: Channels, person_ids: list[int]
                    ) -> dict[int, tuple[str, str]]:
    """Each person's first platform in ``channels.preference`` with an address for
    them, and that address; people reachable nowhere are left out."""
    preference = channels.preference
    needs_identity = [p for p in preference if p not in channels.by_email]
    addresses: dict[int, dict[str, str]] = {}
    if needs_identity:
        ident = IDENTITY.c
        for pid, platform, user_id, address in db.execute(
            select(ident.person_id, ident.platform, ident.platform_user_id, ident.address)
            .where(ident.platform.in_(needs_identity), ident.person_id.in_(person_ids))
        ):
            addresses.setdefault(pid, {})[platform] = address or user_id
    if any(p in channels.by_email for p in preference):
        emails = dict(db.execute(
            select(PERSON.c.id, PERSON.c.email).where(PERSON.c.id.in_(person_ids))
        ).tuples().all())
        for pid, email in emails.items():
            for p in channels.by_email:
                if email:
                    addresses.setdefault(pid, {})[p] = email
    found: dict[int, tuple[str, str]] = {}
    for pid, mine in addresses.items():
        for candidate in preference:
            if mine.get(candidate):
                found[pid] = (candidate, mine[candidate])
                break
    return found


def enqueue(
    session: Session,
    channels: Channels,
    announcement_id: int,
    person_ids: Iterable[int],
    purpose: Purpose,
    now: datetime,
    not_before: dict[int, datetime] | datetime | None = None,
) -> int:
    """Write delivery rows for ``person_ids``; return how many were written.

    People are looked up a chunk at a time, so a 100,000-person audience never
    sits in memory with all its identities at once.
    """
    priority = 1 if purpose in BULK_PURPOSES else 0
    written = 0
    for batch in _chunks(dict.fromkeys(person_ids), CHUNK):
        found = first_reachable(session, channels, batch)
        rows = []
        for pid in batch:
            hit = found.get(pid)
            platform, address = hit if hit else (NO_PLATFORM, None)
            due = not_before.get(pid, now) if isinstance(not_before, dict) else (not_before or now)
            reachable = platform != NO_PLATFORM
            rows.append({
                "announcement_id": announcement_id,
                "person_id": pid,
                "platform": platform,
                "purpose": purpose.value,
                "action": DeliveryAction.SEND.value,
                "priority": priority,
                "address": address,
                "status": (DeliveryStatus.PENDING if reachable
                           else DeliveryStatus.UNREACHABLE).value,
                "attempts": 0,
                "next_attempt_at": due,
                "error": None if reachable else "no linked account on an enabled platform",
                "created_at": now,
                "updated_at": now,
            })
        session.execute(insert(Delivery), rows)
        written += len(rows)
    return written
