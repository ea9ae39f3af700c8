"""The weekly summary's figures: what went out, who read it, what failed.

Anonymous polls appear as counts only. Departments are listed by
acknowledgement rate, lowest first, because that is where to follow up.
``report_view`` turns these figures into what people read; ``report_chart``
draws them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select
from sqlmodel import Session, col

from announcements import report_chart
from announcements.types import DeliveryStatus, Kind, Purpose, Status
from storage.db import Database
from storage.models import Announcement, Delivery, OptOut, PollOption, Receipt, Vote
from storage.models import Person as PersonRow


@dataclass
class AnnouncementLine:
    id: int
    kind: str
    text: str
    urgent: bool
    ack: bool
    anonymous: bool
    recipients: int = 0
    delivered: int = 0
    failed: int = 0
    unreachable: int = 0
    acknowledged: int = 0
    sent_at: datetime | None = None

    @property
    def ack_rate(self) -> float:
        return self.acknowledged / self.delivered if self.delivered else 0.0


@dataclass
class WeeklyReport:
    start: datetime
    end: datetime
    announcements: list[AnnouncementLine]
    departments: list[tuple[str, int, int]]  # (department, delivered, acknowledged)
    polls: list[tuple[AnnouncementLine, list[tuple[str, int]], int]]
    failure_reasons: list[tuple[str, int]]
    opt_outs: dict[str, int]
    new_opt_outs: int
    late: timedelta | None = None
    #: Audience members left out of the week's sends because they opted out.
    opted_out_sends: int = 0
    #: Copies held to a later day by the optional-message daily cap (queued this week).
    held: int = 0
    #: (week start, delivered, acknowledged) of acknowledgement requests, oldest first.
    trend: list[tuple[datetime, int, int]] = field(default_factory=list)
    chart_png: bytes | None = field(default=None, repr=False)

    @property
    def recipients(self) -> int:
        return sum(a.recipients for a in self.announcements)

    @property
    def delivered(self) -> int:
        return sum(a.delivered for a in self.announcements)


#: Weeks of acknowledgement rate the trend shows.
TREND_WEEKS = 8


def weekly(db: Database, now: datetime, *, days: int = 7, late: timedelta | None = None,
           chart: bool = True) -> WeeklyReport:
    start = now - timedelta(days=days)
    with db.session() as s:
        lines = _announcements(s, start, now)
        ids = [a.id for a in lines]
        report = WeeklyReport(
            start=start, end=now, announcements=lines,
            departments=_departments(s, [a.id for a in lines if a.ack]),
            polls=_polls(s, [a for a in lines if a.kind == Kind.POLL]),
            failure_reasons=_failures(s, ids),
            opt_outs=dict(s.execute(select(col(OptOut.category), func.count())
                                    .group_by(col(OptOut.category))).tuples().all()),
            new_opt_outs=s.execute(select(func.count()).select_from(OptOut)
                                   .where(col(OptOut.created_at) >= start)).scalar_one(),
            late=late,
            opted_out_sends=s.execute(
                select(func.coalesce(func.sum(col(Announcement.opted_out)), 0))
                .where(col(Announcement.id).in_(ids))).scalar_one() if ids else 0,
            held=s.execute(select(func.count()).select_from(Delivery).where(
                col(Delivery.held).is_(True), col(Delivery.created_at) >= start,
                col(Delivery.created_at) < now)).scalar_one(),
            trend=_trend(s, now, days),
        )
    if chart:
        report.chart_png = report_chart.render(report)
    return report


def _announcements(s: Session, start: datetime, end: datetime) -> list[AnnouncementLine]:
    anns = s.execute(
        select(Announcement).where(
            col(Announcement.sent_at) >= start, col(Announcement.sent_at) < end,
            col(Announcement.kind).in_([Kind.MESSAGE.value, Kind.POLL.value]),
            col(Announcement.status).in_([Status.SENDING.value, Status.SENT.value]),
        ).order_by(col(Announcement.sent_at))
    ).scalars().all()
    lines = {a.id: AnnouncementLine(a.id or 0, a.kind, a.text, a.urgent, a.ack, a.anonymous,
                                    sent_at=a.sent_at) for a in anns}
    if not lines:
        return []
    counts = s.execute(
        select(col(Delivery.announcement_id), col(Delivery.status), func.count())
        .where(col(Delivery.announcement_id).in_(lines),
               col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
               col(Delivery.status) != DeliveryStatus.CANCELLED.value)
        .group_by(col(Delivery.announcement_id), col(Delivery.status))
    ).tuples().all()
    for ann_id, status, n in counts:
        line = lines[ann_id]
        line.recipients += n
        if status == DeliveryStatus.DELIVERED:
            line.delivered += n
        elif status == DeliveryStatus.FAILED:
            line.failed += n
        elif status == DeliveryStatus.UNREACHABLE:
            line.unreachable += n
    for ann_id, n in s.execute(
        select(col(Receipt.announcement_id), func.count())
        .where(col(Receipt.announcement_id).in_(lines)).group_by(col(Receipt.announcement_id))
    ).tuples():
        lines[ann_id].acknowledged = n
    return list(lines.values())


def _trend(s: Session, end: datetime, days: int) -> list[tuple[datetime, int, int]]:
    """Acknowledgement requests of the last ``TREND_WEEKS`` periods, bucketed by send date."""
    step = timedelta(days=days)
    first = end - TREND_WEEKS * step
    delivered, acked = [0] * TREND_WEEKS, [0] * TREND_WEEKS
    for line in _announcements(s, first, end):
        if line.ack and line.delivered and line.sent_at is not None:
            i = min(TREND_WEEKS - 1, int((line.sent_at - first) / step))
            delivered[i] += line.delivered
            acked[i] += line.acknowledged
    return [(first + i * step, delivered[i], acked[i]) for i in range(TREND_WEEKS)]


def _departments(s: Session, ack_ids: list[int]) -> list[tuple[str, int, int]]:
    if not ack_ids:
        return []
    acked = case((col(Receipt.id).is_not(None), 1), else_=0)
    rows = s.execute(
        select(col(PersonRow.department), func.count(), func.sum(acked))
        .select_from(Delivery)
        .join(PersonRow, col(PersonRow.id) == col(Delivery.person_id))
        .outerjoin(Receipt, and_(col(Receipt.announcement_id) == col(Delivery.announcement_id),
                                 col(Receipt.person_id) == col(Delivery.person_id)))
        .where(col(Delivery.announcement_id).in_(ack_ids),
               col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
               col(Delivery.status) == DeliveryStatus.DELIVERED.value)
        .group_by(col(PersonRow.department))
    ).tuples().all()
    table = [(d, int(n), int(a or 0)) for d, n, a in rows]
    return sorted(table, key=lambda r: (r[2] / r[1] if r[1] else 0, r[0]))


def _polls(s: Session, polls: list[AnnouncementLine]
           ) -> list[tuple[AnnouncementLine, list[tuple[str, int]], int]]:
    out = []
    for poll in polls:
        options = s.execute(
            select(col(PollOption.label), func.count(col(Vote.id)))
            .outerjoin(Vote, col(Vote.option_id) == col(PollOption.id))
            .where(col(PollOption.announcement_id) == poll.id)
            .group_by(col(PollOption.position), col(PollOption.label))
            .order_by(col(PollOption.position))
        ).tuples().all()
        answered = s.execute(select(func.count(func.distinct(col(Vote.person_id))))
                             .where(col(Vote.announcement_id) == poll.id)).scalar_one()
        out.append((poll, [(label, int(n)) for label, n in options], int(answered)))
    return out


def _failures(s: Session, ids: list[int]) -> list[tuple[str, int]]:
    if not ids:
        return []
    rows = s.execute(
        select(col(Delivery.platform), col(Delivery.status), col(Delivery.error))
        .where(col(Delivery.announcement_id).in_(ids),
               col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
               col(Delivery.status).in_([DeliveryStatus.FAILED.value,
                                         DeliveryStatus.UNREACHABLE.value]))
    ).tuples().all()
    reasons = Counter(f"{platform}: {status}: {(error or 'unknown')[:80]}"
                      for platform, status, error in rows)
    return reasons.most_common(8)
