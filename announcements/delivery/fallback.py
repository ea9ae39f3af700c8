"""Fallback across platforms: a person one platform cannot reach is sent the same
message on their next platform.

Rules:
- A message that ends ``unreachable`` (blocked the bot, deactivated, not
  installed) is replaced, in the transaction that records it, by a new row on
  the person's next linked platform after it in ``CRIER_PLATFORM_ORDER``; the
  unreachable row becomes ``cancelled`` and says where the message went
  instead, so every count sees the person once. This holds for every message
  (copies, nudges, approval requests and their outcomes, edit requests) except
  the author's live status message, which is only ever a convenience.
- Only platforms after the failed one are tried, and a (announcement, person,
  platform, purpose) row exists once: a person unreachable everywhere ends with
  one ``unreachable`` row, never a loop.
- Status shows "Reached 3 on Telegram after Slack failed".
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import exists, insert, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from announcements.delivery.fanout import Channels, first_reachable
from announcements.delivery.outbox import DELIVERY, Result
from announcements.types import BULK_PURPOSES, DeliveryAction, DeliveryStatus, Purpose
from storage.models import Delivery

#: How a replaced row's ``error`` starts: "unreachable on slack, sent on telegram: ...".
MARK = "unreachable on "


def fall_back(channels: Channels, conn: Connection, results: list[Result], now: datetime
              ) -> int:
    """Queue each newly unreachable person's next platform; return rows written."""
    order = channels.preference
    written = 0
    for r in results:
        row = r.row
        if (r.status != DeliveryStatus.UNREACHABLE or row.action != DeliveryAction.SEND
                or row.platform not in order or row.purpose == Purpose.PROGRESS):
            continue
        later = order[order.index(row.platform) + 1:]
        rest = Channels(enabled=later, order=later, by_email=channels.by_email)
        hit = first_reachable(conn, rest, [row.person_id]).get(row.person_id)
        if hit is None:
            continue
        c = DELIVERY.c
        taken = conn.execute(select(exists().where(
            c.announcement_id == row.announcement_id, c.person_id == row.person_id,
            c.purpose == row.purpose, c.platform == hit[0]))).scalar()
        if taken:
            continue
        moved = conn.execute(update(DELIVERY).where(
            c.id == row.id, c.status == DeliveryStatus.UNREACHABLE.value).values(
            status=DeliveryStatus.CANCELLED.value, updated_at=now,
            error=f"{MARK}{row.platform}, sent on {hit[0]}: {r.error or 'unreachable'}"[:1000],
        )).rowcount
        if not moved:
            continue
        conn.execute(insert(DELIVERY).values(
            announcement_id=row.announcement_id, person_id=row.person_id, platform=hit[0],
            purpose=row.purpose, action=DeliveryAction.SEND.value,
            priority=1 if row.purpose in BULK_PURPOSES else 0,
            address=hit[1], status=DeliveryStatus.PENDING.value, attempts=0,
            next_attempt_at=now, created_at=now, updated_at=now))
        written += 1
    return written


def lines(s: Session, ann_id: int) -> list[str]:
    """"Reached 3 on Telegram after Slack failed", per pair of platforms."""
    mine = (col(Delivery.announcement_id) == ann_id,
            col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value)
    replaced = (*mine, col(Delivery.status) == DeliveryStatus.CANCELLED.value,
                col(Delivery.error).like(f"{MARK}%"))
    first: dict[int, str] = dict(s.execute(
        select(col(Delivery.person_id), col(Delivery.platform)).where(*replaced)
        .order_by(col(Delivery.id).desc())).tuples().all())  # the earliest one wins
    if not first:
        return []
    reached = Counter((first[pid], platform) for pid, platform in s.execute(
        select(col(Delivery.person_id), col(Delivery.platform)).where(
            *mine, col(Delivery.status) == DeliveryStatus.DELIVERED.value,
            col(Delivery.person_id).in_(select(col(Delivery.person_id)).where(*replaced)))
    ).tuples())
    return [f"Reached {n} on {to.title()} after {was.title()} failed"
            for (was, to), n in sorted(reached.items())]
