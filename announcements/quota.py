"""Each author's daily quota on audience size, set by admins (``crier quota set``).

Rules, each enforced here:
- An author with a quota may draft, in one day of their own time zone, announcements
  reaching at most that many recipients in all; the draft that would pass it is
  refused, saying how many remain. Drafts discarded, cancelled or rejected give
  their recipients back. A recurring reminder counts its audience once, on the day
  it is drafted. Authors without a quota have no such limit.
- Only admins set or clear a quota: ``crier quota set EMAIL N|off`` is run by an
  operator on the server; chat has no command for it.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import func, select
from sqlmodel import Session, col

from announcements import audit
from announcements.errors import CrierError
from announcements.timespec import zone
from announcements.types import Status
from storage.db import Database
from storage.models import Announcement, AuthorQuota

#: Largest quota one can set (a bound, so a typo cannot overflow a column).
MAX_QUOTA = 10_000_000


def quota_of(s: Session, person_id: int) -> int | None:
    return s.execute(select(col(AuthorQuota.daily_recipients))
                     .where(col(AuthorQuota.person_id) == person_id)).scalar_one_or_none()


def used_today(s: Session, person_id: int, tz: str, now: datetime) -> int:
    """Recipients of the author's announcements drafted today (their day), still standing."""
    day = now.astimezone(zone(tz)).date()
    start = datetime.combine(day, time(0), zone(tz))
    return int(s.execute(
        select(func.coalesce(func.sum(col(Announcement.audience_size)), 0))
        .where(col(Announcement.author_id) == person_id,
               col(Announcement.parent_id).is_(None),
               col(Announcement.created_at) >= start,
               col(Announcement.created_at) < start + timedelta(days=1),
               col(Announcement.status).not_in([Status.CANCELLED.value,
                                                Status.REJECTED.value]))
    ).scalar_one())


def check(s: Session, person_id: int, tz: str, size: int, now: datetime) -> None:
    """Refuse a draft of ``size`` recipients that would take the author past their quota."""
    limit = quota_of(s, person_id)
    if limit is None:
        return
    used = used_today(s, person_id, tz, now)
    if used + size > limit:
        left = max(0, limit - used)
        raise CrierError(
            f"this would reach {size:,} people, and your daily quota has {left:,} of "
            f"{limit:,} recipients left today",
            "Send to a smaller audience, discard a draft of today, wait until tomorrow, "
            "or ask an admin to raise your quota (`crier quota set EMAIL N`).",
            field="audience",
        )


def describe(s: Session, person_id: int, tz: str, now: datetime) -> str | None:
    """``5,000 recipients a day (1,200 used today)``, or None without a quota."""
    limit = quota_of(s, person_id)
    if limit is None:
        return None
    return f"{limit:,} recipients a day ({used_today(s, person_id, tz, now):,} used today)"


def parse_quota(text: str) -> int | None:
    """``N`` (a whole number of recipients) or ``off``; refuses anything else."""
    word = text.strip().lower()
    if word == "off":
        return None
    if not (word.isascii() and word.isdigit()) or len(word) > len(str(MAX_QUOTA)) \
            or int(word) > MAX_QUOTA:
        raise CrierError(f"`{text[:20]}` is not a quota",
                         f"Give a number of recipients from 0 to {MAX_QUOTA:,}, or `off`.")
    return int(word)


def set_quota(db: Database, email: str, limit: int | None, by: str, now: datetime) -> str:
    """Set (or, with None, clear) the daily quota of the author ``email``."""
    from announcements.directory.roles import find_person

    with db.session() as s:
        person = find_person(s, email)
        assert person.id is not None
        row = s.execute(select(AuthorQuota).where(col(AuthorQuota.person_id) == person.id)
                        ).scalar_one_or_none()
        if limit is None:
            if row is not None:
                s.delete(row)
            audit.record(s, now, "quota_cleared", person=person.id, by=by)
            return f"{person.name} has no daily quota."
        if row is None:
            row = AuthorQuota(person_id=person.id, daily_recipients=limit, set_by=by, set_at=now)
        row.daily_recipients, row.set_by, row.set_at = limit, by, now
        s.add(row)
        audit.record(s, now, "quota_set", person=person.id, limit=limit, by=by)
        return f"{person.name} may reach {limit:,} recipients a day."
