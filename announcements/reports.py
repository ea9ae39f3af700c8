"""The weekly summary: what went out, who read it, what failed, with a chart.

Anonymous polls appear as counts only. Departments are listed by
acknowledgement rate, lowest first, because that is where to follow up.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select
from sqlmodel import Session, col

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
    chart_png: bytes | None = field(default=None, repr=False)

    @property
    def recipients(self) -> int:
        return sum(a.recipients for a in self.announcements)

    @property
    def delivered(self) -> int:
        return sum(a.delivered for a in self.announcements)

    def text(self) -> str:
        return render_text(self)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


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
        )
    if chart:
        report.chart_png = render_chart(report)
    return report


def _announcements(s: Session, start: datetime, end: datetime) -> list[AnnouncementLine]:
    anns = s.execute(
        select(Announcement).where(
            col(Announcement.sent_at) >= start, col(Announcement.sent_at) < end,
            col(Announcement.kind).in_([Kind.MESSAGE.value, Kind.POLL.value]),
            col(Announcement.status).in_([Status.SENDING.value, Status.SENT.value]),
        ).order_by(col(Announcement.sent_at))
    ).scalars().all()
    lines = {a.id: AnnouncementLine(a.id or 0, a.kind, a.text, a.urgent, a.ack, a.anonymous)
             for a in anns}
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


def render_text(r: WeeklyReport) -> str:
    period = f"{r.start:%a %d %b} – {r.end:%a %d %b %Y}"
    lines = [f"# Crier weekly report, {period}", ""]
    if r.late and r.late > timedelta(0):
        hours = r.late.total_seconds() / 3600
        lines += [f"> This report is {hours:.1f} hours late: Crier was not running when it "
                  f"was due ({r.end - r.late:%a %d %b %H:%M} UTC).", ""]
    acks = [a for a in r.announcements if a.ack]
    ack_delivered = sum(a.delivered for a in acks)
    ack_done = sum(a.acknowledged for a in acks)
    failed = sum(a.failed for a in r.announcements)
    unreachable = sum(a.unreachable for a in r.announcements)
    lines += [
        "## Summary",
        f"- Announcements and polls sent: {len(r.announcements)}",
        f"- Recipients: {r.recipients:,}",
        f"- Delivered: {r.delivered:,} ({_pct(r.delivered, r.recipients)})",
        f"- Acknowledged: {ack_done:,} of {ack_delivered:,} asked "
        f"({_pct(ack_done, ack_delivered)})",
        f"- Failed: {failed:,} · unreachable: {unreachable:,}",
        "",
    ]
    if r.departments:
        lines += ["## Acknowledgement by department (lowest first)", "",
                  "| Department | Acknowledged | Delivered | Rate |", "|---|---:|---:|---:|"]
        lines += [f"| {d} | {a:,} | {n:,} | {_pct(a, n)} |" for d, n, a in r.departments]
        lines.append("")
    urgent_open = [a for a in acks if a.urgent and a.acknowledged < a.delivered]
    if urgent_open:
        lines += ["## Urgent items still unacknowledged", ""]
        lines += [f"- #{a.id} {a.text.splitlines()[0][:70]}: {a.delivered - a.acknowledged:,} "
                  f"of {a.delivered:,} have not acknowledged" for a in urgent_open]
        lines.append("")
    if r.announcements:
        lines += ["## Announcements", "",
                  "| # | What | Recipients | Delivered | Acknowledged |",
                  "|---|---|---:|---:|---:|"]
        for a in r.announcements:
            ack = f"{a.acknowledged:,} ({_pct(a.acknowledged, a.delivered)})" if a.ack else "—"
            title = a.text.splitlines()[0][:60].replace("|", "/")
            lines.append(f"| {a.id} | {title} | {a.recipients:,} | {a.delivered:,} | {ack} |")
        lines.append("")
    if r.polls:
        lines += ["## Polls", ""]
        for poll, options, answered in r.polls:
            total = sum(n for _, n in options) or 1
            anon = " (anonymous)" if poll.anonymous else ""
            lines.append(f"**#{poll.id} {poll.text[:80]}**{anon} — {answered} of "
                         f"{poll.delivered} answered")
            lines += [f"- {label}: {n} ({100 * n // total}%)" for label, n in options]
            lines.append("")
    if r.failure_reasons:
        lines += ["## Failures and unreachable recipients", ""]
        lines += [f"- {reason} × {n}" for reason, n in r.failure_reasons]
        lines.append("")
    lines += ["## Opt-outs", ""]
    if r.opt_outs:
        lines += [f"- {cat}: {n} people" for cat, n in sorted(r.opt_outs.items())]
    else:
        lines.append("- nobody has opted out")
    lines.append(f"- new this week: {r.new_opt_outs}")
    if not r.announcements:
        lines += ["", "Nothing was sent in this period."]
    return "\n".join(lines) + "\n"


def render_chart(r: WeeklyReport) -> bytes:
    """A PNG: acknowledgement rate by department and by announcement."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    acks = [a for a in r.announcements if a.ack and a.delivered]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, max(3.5, 0.45 * max(
        len(r.departments), len(acks), 4))))
    fig.suptitle(f"Acknowledgement rate, {r.start:%d %b} – {r.end:%d %b %Y}", fontsize=13)
    for ax, labels, rates, title in (
        (left, [d for d, _, _ in r.departments],
         [100 * a / n if n else 0 for _, n, a in r.departments], "By department"),
        (right, [f"#{a.id} {a.text.splitlines()[0][:28]}" for a in acks],
         [100 * a.ack_rate for a in acks], "By announcement"),
    ):
        ax.set_title(title)
        ax.set_xlim(0, 100)
        ax.set_xlabel("% acknowledged")
        if not labels:
            ax.text(50, 0.5, "no acknowledgement requests", ha="center", va="center")
            ax.set_yticks([])
            continue
        colors = ["#c0392b" if v < 50 else "#e67e22" if v < 80 else "#27ae60" for v in rates]
        bars = ax.barh(labels, rates, color=colors, height=0.6)
        ax.invert_yaxis()
        for bar, value in zip(bars, rates, strict=True):
            ax.text(min(value + 1, 92), bar.get_y() + bar.get_height() / 2, f"{value:.0f}%",
                    va="center", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
