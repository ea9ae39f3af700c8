"""CSV exports of acknowledgements and poll answers.

``since`` keeps announcements and polls sent since then, with all their answers.

Rule: an anonymous poll is exported as counts per option, never with voters.
"""

from __future__ import annotations

import csv
from datetime import datetime
from typing import TextIO

from sqlalchemy import func, select
from sqlmodel import col

from storage.db import Database
from storage.models import Announcement, PollOption, Receipt, Vote
from storage.models import Person as PersonRow

RECEIPT_HEADER = ["announcement_id", "announcement", "email", "name", "department", "location",
                  "acknowledged_at"]
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
