"""Retention: deliveries, receipts and votes are deleted after ``CRIER_RETENTION_DAYS``.

Rules, each enforced here:
- An announcement's rows are purged together, once its last delivery, receipt
  and vote are all older than the retention period and nothing is still being
  sent; before they go, their counts are added to its ``announcement_tally`` row,
  which ``/crier status`` shows, so past figures remain.
- The period is at least ``MIN_RETENTION_DAYS``, longer than the weekly report
  reaches back (``reports.TREND_WEEKS``), so no report ever reads a purged week.
- A purged poll is closed: nobody can answer (or acknowledge) it again, so a
  person is never counted twice.
- Each purge is one transaction and one audit event; the scheduler runs it daily
  (``retention`` job) and ``crier retention run`` runs it on demand.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, union_all
from sqlmodel import Session, col

from announcements import audit
from announcements.clock import Clock
from announcements.reports import TREND_WEEKS
from announcements.types import DeliveryStatus, Kind, Purpose
from storage.db import Database
from storage.models import Announcement, AnnouncementTally, Delivery, PollOption, Receipt, Vote

DEFAULT_RETENTION_DAYS = 400
#: The scheduler's daily purge runs at this UTC time, when little else happens.
DAILY_AT = {"hour": 3, "minute": 30}
MIN_RETENTION_DAYS = max(90, 7 * (TREND_WEEKS + 1))
#: Announcements purged per run at most (a backlog is worked off over a few days).
BATCH = 500
OPEN = (DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value)


@dataclass(frozen=True)
class Purged:
    announcements: int = 0
    deliveries: int = 0
    receipts: int = 0
    votes: int = 0

    def summary(self, days: int) -> str:
        if not self.announcements:
            return f"Nothing is older than {days} days; nothing was purged."
        return (f"Purged the rows of {self.announcements} announcement(s) older than {days} "
                f"days: {self.deliveries} deliveries, {self.receipts} receipts, "
                f"{self.votes} votes. Their counts are kept for status.")


def due(s: Session, cutoff: datetime) -> list[int]:
    """Announcements whose rows are all older than ``cutoff`` and none still sending."""
    activity = union_all(
        select(col(Delivery.announcement_id).label("aid"),
               func.coalesce(col(Delivery.delivered_at), col(Delivery.updated_at)).label("at")),
        select(col(Receipt.announcement_id).label("aid"), col(Receipt.created_at).label("at")),
        select(col(Vote.announcement_id).label("aid"), col(Vote.created_at).label("at")),
    ).subquery()
    open_ids = select(col(Delivery.announcement_id)).where(col(Delivery.status).in_(OPEN))
    rows = s.execute(
        select(activity.c.aid).group_by(activity.c.aid)
        .having(func.max(activity.c.at) < cutoff)
        .where(activity.c.aid.not_in(open_ids))
        .order_by(activity.c.aid).limit(BATCH)
    ).scalars().all()
    return [int(r) for r in rows]


def purge(s: Session, now: datetime, days: int) -> Purged:
    """Move counts into tallies and delete the rows of every announcement due."""
    ids = due(s, now - timedelta(days=days))
    if not ids:
        return Purged()
    for aid in ids:
        _tally(s, aid, now)
    deliveries = _delete(s, Delivery, col(Delivery.announcement_id).in_(ids))
    receipts = _delete(s, Receipt, col(Receipt.announcement_id).in_(ids))
    votes = _delete(s, Vote, col(Vote.announcement_id).in_(ids))
    s.execute(Announcement.__table__.update()  # type: ignore[attr-defined]
              .where(col(Announcement.id).in_(ids), col(Announcement.kind) == Kind.POLL.value,
                     col(Announcement.closed_at).is_(None))
              .values(closed_at=now))
    purged = Purged(len(ids), deliveries, receipts, votes)
    audit.record(s, now, "retention_purged", days=days, announcements=purged.announcements,
                 deliveries=deliveries, receipts=receipts, votes=votes)
    return purged


def job(s: Session, now: datetime, days: int | None) -> bool:
    """The scheduler's daily ``retention`` job (it runs in the job's transaction)."""
    if days:
        purge(s, now, days)
    return True  # the job keeps running daily


def run(db: Database, clock: Clock, days: int) -> Purged:
    """``crier retention run``: purge every batch that is due now."""
    total = Purged()
    while True:
        with db.session() as s:
            step = purge(s, clock.now(), days)
        total = Purged(*(a + b for a, b in zip(_fields(total), _fields(step), strict=True)))
        if step.announcements < BATCH:
            return total


def _fields(p: Purged) -> tuple[int, int, int, int]:
    return p.announcements, p.deliveries, p.receipts, p.votes


def _tally(s: Session, aid: int, now: datetime) -> None:
    row = s.get(AnnouncementTally, aid) or AnnouncementTally(announcement_id=aid, purged_at=now)
    deliveries = Counter(json.loads(row.deliveries))
    deliveries.update({status: int(n) for status, n in s.execute(
        select(col(Delivery.status), func.count())
        .where(col(Delivery.announcement_id) == aid,
               col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value)
        .group_by(col(Delivery.status))).tuples()})
    votes = Counter(json.loads(row.votes))
    votes.update({str(pos): int(n) for pos, n in s.execute(
        select(col(PollOption.position), func.count(col(Vote.id)))
        .join(Vote, col(Vote.option_id) == col(PollOption.id))
        .where(col(Vote.announcement_id) == aid)
        .group_by(col(PollOption.position))).tuples()})
    row.deliveries = json.dumps(dict(deliveries), sort_keys=True)
    row.votes = json.dumps(dict(votes), sort_keys=True)
    row.acknowledged += s.execute(select(func.count()).select_from(Receipt)
                                  .where(col(Receipt.announcement_id) == aid)).scalar_one()
    row.answered += s.execute(select(func.count(func.distinct(col(Vote.person_id))))
                              .where(col(Vote.announcement_id) == aid)).scalar_one()
    row.purged_at = now
    s.add(row)
    s.flush()


def _delete(s: Session, model: type[Delivery] | type[Receipt] | type[Vote], where: object) -> int:
    result = s.execute(delete(model).where(where),  # type: ignore[arg-type]
                       execution_options={"synchronize_session": False})
    return int(getattr(result, "rowcount", 0) or 0)


def status_lines(s: Session, ann: Announcement) -> list[str]:
    """What ``/crier status`` shows of an announcement whose rows were purged."""
    row = s.get(AnnouncementTally, ann.id) if ann.id is not None else None
    if row is None:
        return []
    deliveries: dict[str, int] = json.loads(row.deliveries)
    shown = " · ".join(f"{deliveries[k]} {k}" for k in sorted(deliveries)) or "none"
    lines = [f"Archived on {row.purged_at:%Y-%m-%d} (retention): deliveries {shown}"
             + (f" · {row.acknowledged} acknowledged" if ann.ack else "")]
    if ann.kind == Kind.POLL:
        votes: dict[str, int] = json.loads(row.votes)
        labels = dict(s.execute(select(col(PollOption.position), col(PollOption.label))
                                .where(col(PollOption.announcement_id) == ann.id)).tuples().all())
        lines.append(f"Archived answers: {row.answered} people")
        lines += [f"  {pos}. {label}: {votes.get(str(pos), 0)}"
                  for pos, label in sorted(labels.items())]
    return lines
