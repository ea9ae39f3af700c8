"""CSV exports of acknowledgements, poll answers, and who has not acknowledged yet.

``since`` keeps announcements and polls sent since then, with all their answers.

Rules: an anonymous poll is exported as counts per option, never with voters.
The follow-up list of an announcement is everyone it was sent to who has not
acknowledged it, whatever became of their copy (delivered, not yet delivered,
failed, unreachable); recalled and cancelled copies are not asked to.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import and_, func, select
from sqlmodel import Session, col

from announcements.errors import CrierError, NotFound
from announcements.types import DeliveryStatus, Purpose
from storage.db import Database
from storage.models import Announcement, Delivery, PollOption, Receipt, Vote
from storage.models import Person as PersonRow

RECEIPT_HEADER = ["announcement_id", "announcement", "email", "name", "department", "location",
                  "acknowledged_at"]
PENDING_HEADER = ["email", "name", "department", "location", "status", "delivered_at"]
#: A copy's status as the follow-up list names it.
PENDING_STATUS = {DeliveryStatus.PENDING.value: "not delivered yet",
                  DeliveryStatus.SENDING.value: "not delivered yet",
                  DeliveryStatus.DELIVERED.value: "delivered",
                  DeliveryStatus.FAILED.value: "failed",
                  DeliveryStatus.UNREACHABLE.value: "unreachable"}
VOTE_HEADER = ["announcement_id", "question", "option", "email", "name", "department", "votes",
               "voted_at"]


def export_receipts(db: Database, out: TextIO, since: datetime | None = None) -> int:
    writer = csv.writer(out)
    writer.writerow(RECEIPT_HEADER)
    query = (
        select(col(Receipt.announcement_id), col(Announcement.text), col(PersonRow.email),
               col(PersonRow.name), col(PersonRow.department), col(PersonRow.location),
               col(Receipt.created_at))
        .join(Announcement, col(Announcement.id) == col(Receipt.announcement_id))
        .join(PersonRow, col(PersonRow.id) == col(Receipt.person_id))
        .order_by(col(Receipt.announcement_id), col(Receipt.created_at))
    )
    if since is not None:
        query = query.where(col(Announcement.sent_at) >= since)
    n = 0
    with db.session() as s:
        for ann_id, text, email, name, dept, loc, at in s.execute(query).yield_per(2000):
            writer.writerow([ann_id, (text.splitlines() or [""])[0][:80], email, name, dept,
                             loc or "",
                             at.isoformat()])
            n += 1
    return n


def export_votes(db: Database, out: TextIO, since: datetime | None = None) -> int:
    writer = csv.writer(out)
    writer.writerow(VOTE_HEADER)
    n = 0
    with db.session() as s:
        polls = (select(Announcement).where(col(Announcement.kind) == "poll")
                 .order_by(col(Announcement.id)))
        if since is not None:
            polls = polls.where(col(Announcement.sent_at) >= since)
        for poll in s.execute(polls).scalars():
            if poll.anonymous:
                rows = s.execute(
                    select(col(PollOption.label), func.count(col(Vote.id)))
                    .outerjoin(Vote, col(Vote.option_id) == col(PollOption.id))
                    .where(col(PollOption.announcement_id) == poll.id)
                    .group_by(col(PollOption.position), col(PollOption.label))
                    .order_by(col(PollOption.position))
                ).tuples()
                for label, count in rows:
                    writer.writerow([poll.id, poll.text, label, "", "", "", count, ""])
                    n += 1
                continue
            rows2 = s.execute(
                select(col(PollOption.label), col(PersonRow.email), col(PersonRow.name),
                       col(PersonRow.department), col(Vote.created_at))
                .join(Vote, col(Vote.option_id) == col(PollOption.id))
                .join(PersonRow, col(PersonRow.id) == col(Vote.person_id))
                .where(col(PollOption.announcement_id) == poll.id)
                .order_by(col(PollOption.position), col(PersonRow.email))
            ).tuples()
            for label, email, name, dept, at in rows2:
                writer.writerow([poll.id, poll.text, label, email, name, dept, 1, at.isoformat()])
                n += 1
    return n


def check_follow_up(db: Database, announcement_id: int) -> None:
    """Refuse an announcement that has no follow-up list (before any file is opened)."""
    with db.session() as s:
        _asked(s, announcement_id)


def _asked(s: Session, announcement_id: int) -> Announcement:
    ann = s.get(Announcement, announcement_id)
    if ann is None:
        raise NotFound(f"there is no announcement #{announcement_id}",
                       "See `/crier list` for the numbers.")
    if not ann.ack:
        raise CrierError(f"#{announcement_id} did not ask for acknowledgement, so nobody "
                         "is pending", "Only announcements sent with `ack` have a "
                         "follow-up list; `crier export receipts` lists acknowledgements.")
    return ann


def export_pending(db: Database, out: TextIO, since: datetime | None = None, *,
                   announcement_id: int) -> int:
    """Who has not acknowledged ``announcement_id`` (the follow-up list), by department."""
    with db.session() as s:
        ann = _asked(s, announcement_id)
        if since is not None and (ann.sent_at is None or ann.sent_at < since):
            rows: Sequence[Any] = []
        else:
            rows = s.execute(
                select(col(PersonRow.email), col(PersonRow.name), col(PersonRow.department),
                       col(PersonRow.location), col(Delivery.status),
                       col(Delivery.delivered_at))
                .join(PersonRow, col(PersonRow.id) == col(Delivery.person_id))
                .outerjoin(Receipt, and_(
                    col(Receipt.announcement_id) == col(Delivery.announcement_id),
                    col(Receipt.person_id) == col(Delivery.person_id)))
                .where(col(Delivery.announcement_id) == announcement_id,
                       col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
                       col(Delivery.status).in_(list(PENDING_STATUS)),
                       col(Receipt.id).is_(None))
                .order_by(col(PersonRow.department), col(PersonRow.name), col(PersonRow.email))
            ).tuples().all()
    writer = csv.writer(out)
    writer.writerow(PENDING_HEADER)
    writer.writerows([email, name, dept, loc or "", PENDING_STATUS[status],
                      at.isoformat() if at else ""]
                     for email, name, dept, loc, status, at in rows)
    return len(rows)
