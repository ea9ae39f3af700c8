"""Writing to the durable outbox: one delivery row per (announcement, person,
platform, purpose), in the caller's transaction.

A person gets each message on one platform: the first of the configured
order on which they are reachable. Someone reachable nowhere gets a row marked
``unreachable`` so reports count them instead of forgetting them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from sqlalchemy import insert, select
from sqlmodel import Session

from announcements.types import DeliveryStatus, Purpose
from storage.models import Delivery, Identity
from storage.models import Person as PersonRow

CHUNK = 5_000
NO_PLATFORM = "none"


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


def enqueue(
    session: Session,
    channels: Channels,
    announcement_id: int,
    person_ids: Iterable[int],
    purpose: Purpose,
    now: datetime,
    not_before: dict[int, datetime] | datetime | None = None,
) -> int:
    """Write delivery rows for ``person_ids``; return how many were written."""
    preference = channels.preference
    needs_identity = [p for p in preference if p not in channels.by_email]
    addresses: dict[int, dict[str, str]] = {}
    if needs_identity:
        for pid, platform, user_id, address in session.execute(
            select(
                Identity.person_id, Identity.platform, Identity.platform_user_id, Identity.address
            ).where(Identity.platform.in_(needs_identity))  # type: ignore[attr-defined]
        ):
            addresses.setdefault(pid, {})[platform] = address or user_id
    emails: dict[int, str] = {}
    if any(p in channels.by_email for p in preference):
        emails = dict(session.execute(select(PersonRow.id, PersonRow.email)).tuples().all())

    written = 0
    for batch in _chunks(person_ids, CHUNK):
        rows = []
        for pid in batch:
            platform, address = NO_PLATFORM, None
            for candidate in preference:
                if candidate in channels.by_email:
                    address = emails.get(pid)
                else:
                    address = addresses.get(pid, {}).get(candidate)
                if address:
                    platform = candidate
                    break
            due = not_before.get(pid, now) if isinstance(not_before, dict) else (not_before or now)
            reachable = platform != NO_PLATFORM
            rows.append(
                {
                    "announcement_id": announcement_id,
                    "person_id": pid,
                    "platform": platform,
                    "purpose": purpose.value,
                    "action": "send",
                    "address": address,
                    "status": (DeliveryStatus.PENDING if reachable else DeliveryStatus.UNREACHABLE).value,
                    "attempts": 0,
                    "next_attempt_at": due,
                    "error": None if reachable else "no linked account on an enabled platform",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        session.execute(insert(Delivery), rows)
        written += len(rows)
    return written
