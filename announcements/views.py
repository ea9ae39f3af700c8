"""Read-only answers: status of an announcement, lists, whoami, help.

Anonymous polls: counts only, never a voter next to a choice. Percentages are
rounded by ``figures.percent``, as in the weekly report.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlmodel import Session, col

from announcements import quota, render, retention
from announcements.delivery import escalation, fallback, progress
from announcements.errors import NotAllowed, NotFound
from announcements.figures import pct
from announcements.policy import Grants, grants_of
from announcements.timespec import zone
from announcements.types import DeliveryAction, DeliveryStatus, Kind, Person, Purpose, Role, Status
from storage.models import Announcement, Delivery, Identity, PollOption, Receipt, Vote
from storage.models import Person as PersonRow

LIST_LIMIT = 15


def may_see(grants: Grants, ann: Announcement) -> bool:
    """Status is for the author, approvers and admins, not for recipients."""
    return ann.author_id == grants.person_id or grants.has(Role.APPROVER)


def delivery_counts(s: Session, ann_id: int) -> dict[str, int]:
    rows = s.execute(
        select(col(Delivery.status), func.count())
        .where(col(Delivery.announcement_id) == ann_id,
               col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value)
        .group_by(col(Delivery.status))
    ).tuples().all()
    return {status: n for status, n in rows}


def acknowledged(s: Session, ann_id: int) -> int:
    return s.execute(
        select(func.count()).select_from(Receipt).where(col(Receipt.announcement_id) == ann_id)
    ).scalar_one()


def by_department(s: Session, ann_id: int) -> list[tuple[str, int, int, int]]:
    """(department, recipients, delivered, acknowledged), lowest acknowledgement rate first."""
    delivered = case((col(Delivery.status) == DeliveryStatus.DELIVERED.value, 1), else_=0)
    acked = case((col(Receipt.id).is_not(None), 1), else_=0)
    rows = s.execute(
        select(col(PersonRow.department), func.count(), func.sum(delivered), func.sum(acked))
        .select_from(Delivery)
        .join(PersonRow, col(PersonRow.id) == col(Delivery.person_id))
        .outerjoin(Receipt, and_(col(Receipt.announcement_id) == col(Delivery.announcement_id),
                                 col(Receipt.person_id) == col(Delivery.person_id)))
        .where(col(Delivery.announcement_id) == ann_id,
               col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
               col(Delivery.status) != DeliveryStatus.CANCELLED.value)
        .group_by(col(PersonRow.department))
    ).tuples().all()
    table = [(d, int(n), int(dv or 0), int(a or 0)) for d, n, dv, a in rows]
    return sorted(table, key=lambda r: (r[3] / r[1] if r[1] else 0, r[0]))


def poll_results(s: Session, ann: Announcement) -> list[str]:
    options = s.execute(
        select(col(PollOption.position), col(PollOption.label), func.count(col(Vote.id)))
        .outerjoin(Vote, col(Vote.option_id) == col(PollOption.id))
        .where(col(PollOption.announcement_id) == ann.id)
        .group_by(col(PollOption.position), col(PollOption.label))
        .order_by(col(PollOption.position))
    ).tuples().all()
    answered = s.execute(
        select(func.count(func.distinct(col(Vote.person_id))))
        .where(col(Vote.announcement_id) == ann.id)
    ).scalar_one()
    total_votes = sum(n for _, _, n in options)
    lines = [f"Answers: {answered} of {ann.audience_size} people"]
    for pos, label, n in options:
        lines.append(f"  {pos}. {label}: {n} ({pct(n, total_votes) if total_votes else '0%'})")
    if ann.anonymous:
        lines.append("  (anonymous poll: who chose what is never shown)")
    return lines


def status(s: Session, actor: Person, ann_id: int | None) -> str:
    grants = grants_of(s, actor.id)
    if ann_id is None:
        ann = s.execute(
            select(Announcement).where(col(Announcement.author_id) == actor.id)
            .order_by(col(Announcement.id).desc()).limit(1)
        ).scalar_one_or_none()
        if ann is None:
            raise NotFound("you have no announcements yet", "Draft one with /announce.")
    else:
        ann = s.get(Announcement, ann_id)
        if ann is None:
            raise NotFound(f"there is no announcement #{ann_id}", "See `/crier list`.")
    if not may_see(grants, ann):
        raise NotAllowed(f"#{ann.id} is not yours to follow",
                         "Status is shown to its author, approvers and admins.")
    assert ann.id is not None
    author = s.get(PersonRow, ann.author_id)
    lines = [f"{render.label(ann)} — {ann.status.replace('_', ' ')}",
             f"By {author.name if author else '?'} · to {ann.audience} · {ann.text[:80]}"]
    if ann.send_at and ann.status in (Status.SCHEDULED, Status.APPROVED, Status.DRAFT,
                                      Status.PENDING_APPROVAL):
        lines.append(f"Sends: {render.local(ann.send_at, actor.timezone)}")
    if ann.every:
        lines.append(f"Repeats: every {ann.every}")
    if ann.category:
        lines.append(f"Category: {ann.category}")
    if ann.opted_out:
        lines.append(f"Opted out: {ann.opted_out:,} (left out: they opted out of "
                     f"{ann.category})")
    if ann.reject_reason:
        lines.append(f"Rejection reason: {ann.reject_reason}")
    lines.extend(progress.correction_lines(s, ann, actor.timezone))
    counts = progress.snapshot(s, ann.id)
    if counts.total:
        lines.extend(progress.lines(counts, ann.ack))  # the same as the live status message
        lines.extend(fallback.lines(s, ann.id))
        lines.extend(escalation.lines(s, ann.id, ann.escalated_at))
        if counts.pending:
            lines.append("Pending: " + " · ".join(pending_reasons(s, ann, actor.timezone)))
        if counts.unreachable:
            lines.append("Not reached: " + " · ".join(
                f"{n:,} {reason}" for reason, n in unreachable_reasons(s, ann.id)))
        if ann.ack:
            lines.append("By department (lowest first):")
            for dept, n_dept, _dv, acks in by_department(s, ann.id):
                lines.append(f"  {dept}: {acks} of {n_dept} acknowledged ({pct(acks, n_dept)})")
    if ann.kind == Kind.POLL:
        lines.extend(poll_results(s, ann))
    lines.extend(retention.status_lines(s, ann))  # counts of rows purged by retention
    return "\n".join(lines)


def unreachable_reasons(s: Session, ann_id: int) -> list[tuple[str, int]]:
    """Why copies could not be delivered (``Teams: not installed …``, blocked the bot),
    most common first; the platform's word for it, as the outbox row recorded it."""
    rows = s.execute(
        select(col(Delivery.error), func.count())
        .where(col(Delivery.announcement_id) == ann_id,
               col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
               col(Delivery.status) == DeliveryStatus.UNREACHABLE.value)
        .group_by(col(Delivery.error)).order_by(func.count().desc())
    ).tuples().all()
    return [((error or "unreachable")[:160], int(n)) for error, n in rows]


#: Why a copy still waits, from its outbox row (Retry-After errors end "(retry after Ns)").
_WHY = case(
    (col(Delivery.status) == DeliveryStatus.SENDING.value, "sending"),
    (col(Delivery.error).like("%(retry after %"), "retry_after"),
    (col(Delivery.error).is_not(None), "retrying"),
    (col(Delivery.held).is_(True), "capped"),
    (col(Delivery.next_attempt_at) > col(Delivery.created_at), "held"),
    else_="queued")


def pending_reasons(s: Session, ann: Announcement, tz: str) -> list[str]:
    """Why copies not yet sent are waiting: working hours (or the local send time),
    a platform's Retry-After, a retry after an error, or their turn in the queue."""
    rows = s.execute(
        select(_WHY, col(PersonRow.timezone), func.count(),
               func.min(col(Delivery.next_attempt_at)))
        .join(PersonRow, col(PersonRow.id) == col(Delivery.person_id))
        .where(col(Delivery.announcement_id) == ann.id,
               col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
               col(Delivery.action) == DeliveryAction.SEND.value,
               col(Delivery.status).in_([DeliveryStatus.PENDING.value,
                                         DeliveryStatus.SENDING.value]))
        .group_by(_WHY, col(PersonRow.timezone))
    ).tuples().all()
    counts: dict[str, int] = {}
    first: dict[str, datetime] = {}
    walls: set[str] = set()
    for why, person_tz, n, at in rows:
        counts[why] = counts.get(why, 0) + n
        if at is not None:
            first[why] = min(first.get(why, at), at)
            if why == "held":
                walls.add(f"{at.astimezone(zone(person_tz or 'UTC')):%H:%M}")
    out = []
    if "held" in counts:
        wait = "the send time" if ann.local_time else "working hours"
        when = (f"next at {walls.pop()} in their time zone" if len(walls) == 1
                else f"the first at {render.local(first['held'], tz)}")
        out.append(f"{counts['held']:,} waiting for {wait}, {when}")
    if "capped" in counts:
        out.append(f"{counts['capped']:,} held to a later day (daily cap on optional "
                   f"messages), the first at {render.local(first['capped'], tz)}")
    if "retry_after" in counts:
        out.append(f"{counts['retry_after']:,} waiting for Retry-After, next try "
                   f"{render.local(first['retry_after'], tz)}")
    if "retrying" in counts:
        out.append(f"{counts['retrying']:,} retrying after an error, next try "
                   f"{render.local(first['retrying'], tz)}")
    if "queued" in counts:
        out.append(f"{counts['queued']:,} queued")
    if "sending" in counts:
        out.append(f"{counts['sending']:,} being sent now")
    return out


def listing(s: Session, actor: Person) -> str:
    """Authors see their own recent items; approvers also what awaits them."""
    grants = grants_of(s, actor.id)
    lines: list[str] = []
    mine = s.execute(
        select(Announcement).where(col(Announcement.author_id) == actor.id)
        .order_by(col(Announcement.id).desc()).limit(LIST_LIMIT)
    ).scalars().all()
    if mine:
        lines.append("Yours:")
        lines += [_line(a, actor) for a in mine]
    if grants.has(Role.APPROVER):
        waiting = s.execute(
            select(Announcement).where(
                col(Announcement.status) == Status.PENDING_APPROVAL.value,
                col(Announcement.author_id) != actor.id,
            ).order_by(col(Announcement.id)).limit(LIST_LIMIT)
        ).scalars().all()
        if waiting:
            lines.append("Waiting for approval:")
            lines += [_line(a, actor) for a in waiting]
    if grants.is_admin:
        upcoming = s.execute(
            select(Announcement).where(
                or_(col(Announcement.status) == Status.SCHEDULED.value,
                    col(Announcement.status) == Status.SENDING.value),
                col(Announcement.author_id) != actor.id,
            ).order_by(col(Announcement.send_at)).limit(LIST_LIMIT)
        ).scalars().all()
        if upcoming:
            lines.append("Scheduled or sending (everyone's):")
            lines += [_line(a, actor) for a in upcoming]
    if not lines:
        return "Nothing to list: no drafts, approvals or scheduled sends."
    return "\n".join(lines)


def _line(a: Announcement, actor: Person) -> str:
    when = f" · every {a.every}" if a.every else (
        f" · {render.local(a.send_at, actor.timezone)}" if a.send_at else "")
    text = a.text.splitlines()[0][:50] if a.text else ""
    return f"  #{a.id} {a.kind} · {a.status.replace('_', ' ')}{when} · to {a.audience} · {text}"


def whoami(s: Session, actor: Person, now: datetime) -> str:
    grants = grants_of(s, actor.id)
    links = s.execute(
        select(col(Identity.platform), col(Identity.platform_user_id))
        .where(col(Identity.person_id) == actor.id)
    ).tuples().all()
    lines = [
        f"{actor.name} <{actor.email}>",
        f"{actor.title or 'No title'} · {actor.department} · {actor.location or 'no location'} · "
        f"{actor.timezone}",
        "Roles: " + (", ".join(grants.describe()) or "none (you receive announcements)"),
        "Linked: " + (", ".join(f"{p} ({u})" for p, u in links) or "no chat accounts linked"),
    ]
    if grants.has(Role.AUTHOR):
        limit = quota.describe(s, actor.id, actor.timezone, now)
        lines.append("Daily quota: " + (limit or "none"))
    return "\n".join(lines)
