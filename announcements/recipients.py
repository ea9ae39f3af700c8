"""Who gets a message, and when: opt-outs and the daily cap, for every kind of send.

Rules, each enforced here:
- ``recipients`` is the one place opt-outs apply, for first sends, reminder
  occurrences and nudges alike: a person who opted out of an optional category
  gets nothing of it; a mandatory category reaches everyone.
- Opt-outs are read when a send is released (on approval, at each reminder
  occurrence, at each nudge); people left out are counted on the announcement.
- The daily cap: a person gets at most ``CRIER_OPTIONAL_DAILY_CAP`` optional-category
  messages on one day of their own time zone. A further one is held to the first
  later day with room (at the start of their working hours), never dropped, and
  counted as held. Mandatory and urgent messages are never capped, and count
  toward nobody's cap; nudges are not capped (they follow a message already counted).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from announcements.categories import DEFAULT_FOR_KIND
from announcements.delivery.fanout import enqueue
from announcements.domain import DomainConfig
from announcements.timespec import zone
from announcements.timing import due_times
from announcements.types import DeliveryStatus, Kind, Purpose
from storage.models import Announcement, Delivery, OptOut
from storage.models import Person as PersonRow

#: People looked up at a time (keeps ``IN (...)`` lists within every database's limits).
CHUNK = 5_000
#: A held message looks this many days ahead for a day with room.
MAX_HOLD_DAYS = 366


def category_of(ann: Announcement) -> str:
    """The announcement's category; one stored before categories counts as its kind's."""
    return ann.category or DEFAULT_FOR_KIND[Kind(ann.kind)]


@dataclass(frozen=True)
class Recipients:
    ids: list[int]
    #: How many were left out because they opted out of the category.
    opted_out: int


def recipients(s: Session, ann: Announcement, ids: Iterable[int],
               config: DomainConfig) -> Recipients:
    """``ids`` minus the people who opted out of ``ann``'s category (when it is optional)."""
    ids = list(dict.fromkeys(ids))
    category = category_of(ann)
    if not config.categories.is_optional(category):
        return Recipients(ids, 0)
    out = set(s.execute(select(col(OptOut.person_id))
                        .where(col(OptOut.category) == category)).scalars())
    kept = [i for i in ids if i not in out]
    return Recipients(kept, len(ids) - len(kept))


def send(s: Session, config: DomainConfig, ann: Announcement, ids: list[int],
         base: datetime, now: datetime) -> dict[int, datetime]:
    """Queue ``ann`` for ``ids`` (already through ``recipients``) from ``base``: in
    working hours, and past the daily cap where it applies. Returns the due times."""
    assert ann.id is not None
    due = due_times(s, ann, ids, base, config.quiet)
    held: list[int] = []
    if not ann.urgent and config.categories.is_optional(category_of(ann)):
        held = _hold(s, config, ann.id, due)
    enqueue(s, config.channels, ann.id, ids, Purpose.ANNOUNCEMENT, now, not_before=due)
    for batch in _chunks(held):
        s.execute(update(Delivery).where(
            col(Delivery.announcement_id) == ann.id,
            col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
            col(Delivery.person_id).in_(batch)).values(held=True))
    return due


def _hold(s: Session, config: DomainConfig, ann_id: int, due: dict[int, datetime]
          ) -> list[int]:
    """Move each due time past the days on which the person already has a full cap."""
    if not due:
        return []
    cap = config.optional_daily_cap
    optional = sorted(config.categories.optional)
    since = min(due.values()) - timedelta(days=1)
    when = func.coalesce(col(Delivery.delivered_at), col(Delivery.next_attempt_at))
    zones: dict[int, str] = {}
    taken: dict[int, Counter[object]] = {}
    for batch in _chunks(list(due)):
        zones.update(s.execute(select(col(PersonRow.id), col(PersonRow.timezone))
                               .where(col(PersonRow.id).in_(batch))).tuples().all())
        for pid, at in s.execute(
            select(col(Delivery.person_id), when)
            .join(Announcement, col(Announcement.id) == col(Delivery.announcement_id))
            .where(col(Delivery.person_id).in_(batch),
                   col(Delivery.announcement_id) != ann_id,
                   col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
                   col(Delivery.status) != DeliveryStatus.CANCELLED.value,
                   col(Announcement.category).in_(optional),
                   col(Announcement.urgent).is_(False),
                   when >= since)
        ).tuples():
            tz = zone(zones.get(pid) or "UTC")
            taken.setdefault(pid, Counter())[at.astimezone(tz).date()] += 1
    held = []
    for pid, at in due.items():
        counts = taken.get(pid)
        if not counts:
            continue
        tz_name = zones.get(pid) or "UTC"
        tz = zone(tz_name)
        moved = at
        for _ in range(MAX_HOLD_DAYS):
            if counts[moved.astimezone(tz).date()] < cap:
                break
            day = moved.astimezone(tz).date() + timedelta(days=1)
            start = datetime.combine(day, time(0), tz).astimezone(at.tzinfo)
            moved = config.quiet.next_open(start, tz_name) if config.quiet else start
        if moved != at:
            due[pid] = moved
            held.append(pid)
    return held


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]
