"""Live progress of a send: the numbers ``/crier status`` shows, and the author's
status message that the delivery engine keeps up to date.

Rules:
- A send to at least ``min_recipients`` people gets one status message to its
  author (a delivery row with purpose ``progress``) when its first copies go out.
- While copies are being sent, recalled or updated, that message is updated in
  place at most once every ``interval`` seconds, and once more when it is done.
- The message and ``/crier status`` show the same numbers, from ``snapshot``.
- While copies wait, the message estimates the time left from the pace so far
  (copies settled since sending began), whatever the platforms' limits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from announcements import render
from announcements.delivery import escalation, fallback
from announcements.delivery.fanout import Channels, enqueue
from announcements.delivery.outbox import Claimed
from announcements.types import DeliveryAction, DeliveryStatus, OutboundMessage, Purpose, Status
from storage.db import Database
from storage.models import Announcement, Correction, Delivery, Receipt
from storage.models import Person as PersonRow


@dataclass(frozen=True)
class Progress:
    """Where each copy of an announcement is (cancelled copies not counted)."""

    total: int = 0
    delivered: int = 0  # in the person's chat now
    failed: int = 0
    unreachable: int = 0
    pending: int = 0  # not sent yet
    recalled: int = 0
    deleting: int = 0  # being recalled
    updating: int = 0  # being updated in place (an edit, a closed poll)
    acknowledged: int = 0

    @property
    def sent(self) -> int:
        """Copies that reached people (including those since recalled)."""
        return self.delivered + self.recalled + self.deleting + self.updating

    @property
    def settled(self) -> int:
        return self.sent + self.failed + self.unreachable

    @property
    def busy(self) -> bool:
        return bool(self.pending or self.deleting or self.updating)


def snapshot(s: Session, ann_id: int) -> Progress:
    counts: dict[str, int] = {}
    for status, action, n in s.execute(
        select(col(Delivery.status), col(Delivery.action), func.count())
        .where(col(Delivery.announcement_id) == ann_id,
               col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value)
        .group_by(col(Delivery.status), col(Delivery.action))
    ).tuples():
        if status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING):
            key = {DeliveryAction.DELETE: "deleting",
                   DeliveryAction.UPDATE: "updating"}.get(action, "pending")
        elif status == DeliveryStatus.CANCELLED:
            continue
        else:
            key = status
        counts[key] = counts.get(key, 0) + n
    acked = s.execute(select(func.count()).select_from(Receipt)
                      .where(col(Receipt.announcement_id) == ann_id)).scalar_one()
    return Progress(total=sum(counts.values()), acknowledged=acked,
                    **{k: v for k, v in counts.items() if k in _FIELDS})


_FIELDS = frozenset({"delivered", "failed", "unreachable", "pending", "recalled", "deleting",
                     "updating"})


def lines(p: Progress, ack: bool) -> list[str]:
    """The delivery part of ``/crier status``, also the body of the status message."""
    out = [f"Delivery {render.bar(p.settled, p.total)}",
           f"Sent {p.sent} of {p.total} · failed {p.failed} · unreachable {p.unreachable} · "
           f"pending {p.pending}"]
    if p.recalled or p.deleting:
        kept = f" · could not delete {p.delivered}" if p.delivered and not p.deleting else ""
        out.append(f"Recalled {p.recalled} of {p.sent} · deleting {p.deleting}{kept}")
    if p.updating:
        out.append(f"Updating {p.updating} in place")
    if ack:
        out.append(f"Acknowledged {p.acknowledged} of {p.total} · "
                   f"not yet {p.total - p.acknowledged}")
    return out


def time_left(p: Progress, elapsed: float) -> list[str]:
    """"About 4 min left": the copies still to send at the pace of those settled so far."""
    done = p.sent + p.failed  # unreachable rows were settled before sending began
    if not p.pending or done <= 0 or elapsed <= 0:
        return []
    left = round(p.pending * elapsed / done)
    if left < 60:
        text = f"{max(1, left)} s"
    elif left < 3600:
        text = f"{round(left / 60)} min"
    else:
        text = f"{left // 3600} h {round(left % 3600 / 60)} min"
    return [f"About {text} left"]


def correction_lines(s: Session, ann: Announcement, tz: str) -> list[str]:
    """The latest edit of ``ann``, if any."""
    latest = s.execute(select(Correction).where(col(Correction.announcement_id) == ann.id)
                       .order_by(col(Correction.id).desc()).limit(1)
                       ).scalar_one_or_none()
    if latest is None:
        return []
    editor = s.get(PersonRow, latest.editor_id)
    who = editor.name if editor else "someone"
    if latest.status == "pending_approval":
        return [f"Edit by {who} waiting for approval: {latest.text[:80]}"]
    decider = s.get(PersonRow, latest.decided_by_id) if latest.decided_by_id else None
    by = decider.name if decider else "an approver"
    if latest.status == "approved":
        return [f"Edited by {who}, approved by {by} {render.local(latest.decided_at, tz)}"]
    if latest.status == "rejected":
        reason = f": {latest.reason}" if latest.reason else ""
        return [f"Edit by {who} rejected by {by}{reason}"]
    return []


def message(s: Session, ann: Announcement, now: datetime) -> OutboundMessage:
    """The author's status message."""
    assert ann.id is not None
    author = s.get(PersonRow, ann.author_id)
    tz = author.timezone if author else "UTC"
    p = snapshot(s, ann.id)
    state = ann.status.replace("_", " ")
    if ann.status == Status.SENDING or (ann.status == Status.RECALLED and p.deleting):
        state = "recalling" if ann.status == Status.RECALLED else "sending"
    body = (lines(p, ann.ack) + fallback.lines(s, ann.id)
            + escalation.lines(s, ann.id, ann.escalated_at) + correction_lines(s, ann, tz))
    if ann.status == Status.SENDING and ann.sent_at is not None:
        body += time_left(p, (now - ann.sent_at).total_seconds())
    return OutboundMessage(
        title=f"{render.label(ann)} — {state}",
        text="\n".join(body),
        footer=f"As of {render.local(now, tz)} · /crier status {ann.id} for details",
        announcement_id=ann.id,
        purpose=Purpose.PROGRESS.value,
    )


def messages_for(s: Session, rows: list[Claimed], now: datetime) -> dict[int, OutboundMessage]:
    """Render claimed progress rows (the engine's renderer for this purpose)."""
    out: dict[int, OutboundMessage] = {}
    cache: dict[int, OutboundMessage] = {}
    for r in rows:
        if r.announcement_id not in cache:
            ann = s.get(Announcement, r.announcement_id)
            if ann is None:
                continue
            cache[r.announcement_id] = message(s, ann, now)
        out[r.id] = cache[r.announcement_id]
    return out


def ensure(db: Database, channels: Channels, ann_ids: Iterable[int], now: datetime,
           min_recipients: int) -> int:
    """Open the status message of sends that started; return how many were opened."""
    ids = sorted(set(ann_ids))
    opened = 0
    with db.session() as s:
        have = set(s.execute(select(col(Delivery.announcement_id)).where(
            col(Delivery.announcement_id).in_(ids),
            col(Delivery.purpose) == Purpose.PROGRESS.value)).scalars())
        for aid, author, size in s.execute(
            select(col(Announcement.id), col(Announcement.author_id),
                   col(Announcement.audience_size))
            .where(col(Announcement.id).in_(ids))
        ).tuples():
            if aid in have or size < min_recipients:
                continue
            try:
                with s.begin_nested():
                    enqueue(s, channels, aid, [author], Purpose.PROGRESS, now)
                opened += 1
            except IntegrityError:  # another worker opened it first
                pass
    return opened


def requeue(db: Database, ann_ids: Iterable[int], now: datetime, interval: float
            ) -> tuple[int, set[int]]:
    """Queue an update of each sent status message, ``interval`` after its last one.

    Returns how many are due now, and the announcements whose message is being
    sent right now (ask again later: it may show numbers from before).
    """
    ids = sorted(set(ann_ids))
    if not ids:
        return 0, set()
    due_now, later = 0, set()
    with db.session() as s:
        rows = s.execute(select(col(Delivery.id), col(Delivery.announcement_id),
                                col(Delivery.status), col(Delivery.delivered_at)).where(
            col(Delivery.announcement_id).in_(ids),
            col(Delivery.purpose) == Purpose.PROGRESS.value)).tuples().all()
        for row_id, ann_id, status, last in rows:
            if status == DeliveryStatus.SENDING:
                later.add(ann_id)
            if status != DeliveryStatus.DELIVERED:
                continue
            when = max(now, (last or now) + timedelta(seconds=interval))
            s.execute(update(Delivery).where(
                col(Delivery.id) == row_id,
                col(Delivery.status) == DeliveryStatus.DELIVERED.value,
            ).values(status=DeliveryStatus.PENDING.value, action=DeliveryAction.UPDATE.value,
                     attempts=0, next_attempt_at=when, updated_at=now))
            due_now += when <= now
    return due_now, later
