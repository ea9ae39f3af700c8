"""Escalation of urgent acknowledgements: ``/announce urgent ack escalate:30m …``.

Rules:
- ``escalate:`` needs ``urgent`` and ``ack``, and lies between one minute and one week.
- ``DURATION`` after sending, each person whose copy was delivered and who has not
  acknowledged also gets the announcement on their next linked platform after
  that one in ``CRIER_PLATFORM_ORDER``, as a new delivery row, once per
  announcement. Quiet hours do not hold it: the message is urgent.
- An acknowledgement on any copy counts once (one receipt per person) and updates
  every copy, including a copy whose send was under way when the person
  acknowledged (``refresh_acknowledged``, with the results).
- The author's status names who was escalated and who of them acknowledged, where.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from announcements.delivery.fanout import Channels, first_reachable
from announcements.delivery.outbox import ANNOUNCEMENT, DELIVERY, Result, audit_events
from announcements.errors import CrierError
from announcements.types import DeliveryAction, DeliveryStatus, Purpose, Status
from storage.db import Database
from storage.models import Delivery, Receipt
from storage.models import Person as PersonRow

MIN_ESCALATION = timedelta(minutes=1)
MAX_ESCALATION = timedelta(weeks=1)
RECEIPT = Receipt.__table__  # type: ignore[attr-defined]
NAMES_SHOWN = 10


def check_escalation(after: timedelta | None, *, urgent: bool, ack: bool) -> int | None:
    """Seconds to wait before escalating, or None; a clear error for a bad request."""
    if after is None:
        return None
    if not (urgent and ack):
        raise CrierError("`escalate:` is for urgent announcements that ask for an "
                         "acknowledgement",
                         "Add `urgent ack`: /announce to:Sales urgent ack escalate:30m …")
    if not MIN_ESCALATION <= after <= MAX_ESCALATION:
        raise CrierError("`escalate:` must be between 1 minute and 1 week",
                         "Write e.g. `escalate:30m`, `escalate:4h` or `escalate:2d`.")
    return int(after.total_seconds())


def escalate_due(db: Database, channels: Channels, now: datetime) -> int:
    """Queue the escalated copies of every announcement now due; return rows written."""
    a = ANNOUNCEMENT.c
    written = 0
    with db.engine.begin() as conn:
        candidates = conn.execute(select(a.id, a.sent_at, a.escalate_after).where(
            a.escalate_after.is_not(None), a.escalated_at.is_(None), a.sent_at.is_not(None),
            a.status.in_([Status.SENDING.value, Status.SENT.value]))).all()
        for ann_id, sent_at, after in candidates:
            if sent_at + timedelta(seconds=after) > now:
                continue
            if not conn.execute(update(ANNOUNCEMENT).where(
                    a.id == ann_id, a.escalated_at.is_(None)).values(escalated_at=now)).rowcount:
                continue  # another worker escalated it
            written += _escalate(conn, channels, ann_id, now)
            audit_events(conn, now, "escalated", [ann_id])
    return written


def _escalate(conn: Connection, channels: Channels, ann_id: int, now: datetime) -> int:
    d = DELIVERY.c
    mine = (d.announcement_id == ann_id, d.purpose == Purpose.ANNOUNCEMENT.value)
    taken = set(conn.execute(select(d.person_id, d.platform).where(*mine)).tuples())
    unacked = conn.execute(select(d.person_id, d.platform).where(
        *mine, d.status == DeliveryStatus.DELIVERED.value,
        ~exists().where(RECEIPT.c.announcement_id == ann_id,
                        RECEIPT.c.person_id == d.person_id))).tuples().all()
    by_platform: dict[str, list[int]] = defaultdict(list)
    for pid, platform in unacked:
        by_platform[platform].append(pid)
    order = channels.preference
    rows = []
    for platform, pids in by_platform.items():
        later = order[order.index(platform) + 1:] if platform in order else ()
        rest = Channels(enabled=later, order=later, by_email=channels.by_email)
        for pid, (target, address) in first_reachable(conn, rest, pids).items():
            if (pid, target) not in taken:
                rows.append({"announcement_id": ann_id, "person_id": pid, "platform": target,
                             "purpose": Purpose.ANNOUNCEMENT.value,
                             "action": DeliveryAction.SEND.value, "priority": 0,
                             "address": address, "status": DeliveryStatus.PENDING.value,
                             "attempts": 0, "next_attempt_at": now, "created_at": now,
                             "updated_at": now})
    if rows:
        conn.execute(insert(DELIVERY), rows)
    return len(rows)


def refresh_acknowledged(conn: Connection, results: list[Result], now: datetime) -> None:
    """A copy that went out after its person acknowledged (on another copy) is updated
    to say so."""
    sent = [r for r in results if r.status == DeliveryStatus.DELIVERED
            and r.row.action == DeliveryAction.SEND and r.row.purpose == Purpose.ANNOUNCEMENT]
    if not sent:
        return
    escalating = set(conn.execute(select(ANNOUNCEMENT.c.id).where(
        ANNOUNCEMENT.c.id.in_({r.row.announcement_id for r in sent}),
        ANNOUNCEMENT.c.escalated_at.is_not(None))).scalars())
    sent = [r for r in sent if r.row.announcement_id in escalating]
    if not sent:
        return
    acked = set(conn.execute(select(RECEIPT.c.announcement_id, RECEIPT.c.person_id).where(
        RECEIPT.c.announcement_id.in_(escalating),
        RECEIPT.c.person_id.in_({r.row.person_id for r in sent}))).tuples())
    ids = [r.row.id for r in sent if (r.row.announcement_id, r.row.person_id) in acked]
    if ids:
        conn.execute(update(DELIVERY).where(
            DELIVERY.c.id.in_(ids), DELIVERY.c.status == DeliveryStatus.DELIVERED.value).values(
            status=DeliveryStatus.PENDING.value, action=DeliveryAction.UPDATE.value,
            attempts=0, next_attempt_at=now, updated_at=now))


def lines(s: Session, ann_id: int, escalated_at: datetime | None) -> list[str]:
    """"Escalated to 2 on their next platform: Ann, Bob" and who of them acknowledged."""
    if escalated_at is None:
        return []
    twice = (select(col(Delivery.person_id))
             .where(col(Delivery.announcement_id) == ann_id,
                    col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
                    col(Delivery.status) != DeliveryStatus.CANCELLED.value)
             .group_by(col(Delivery.person_id)).having(func.count() > 1))
    people: list[tuple[int, str]] = list(s.execute(select(col(PersonRow.id), col(PersonRow.name))
                       .where(col(PersonRow.id).in_(twice))
                       .order_by(col(PersonRow.name))).tuples())
    if not people:
        return ["Escalated: everyone had acknowledged, or had no other platform"]
    acked: dict[int, str | None] = dict(s.execute(
        select(col(Receipt.person_id), col(Receipt.platform)).where(
            col(Receipt.announcement_id) == ann_id,
            col(Receipt.person_id).in_([pid for pid, _ in people]))).tuples().all())
    where = [(pid, name + (f" on {acked[pid].title()}" if acked[pid] else ""))  # type: ignore[union-attr]
             for pid, name in people if pid in acked]
    return [f"Escalated to {len(people)} on their next platform: {_names(people)}",
            f"Acknowledged since: {len(where)} of {len(people)}"
            + (f" ({_names(where)})" if where else "")]


def _names(people: list[tuple[int, str]]) -> str:
    shown = ", ".join(name for _, name in people[:NAMES_SHOWN])
    more = len(people) - NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")
