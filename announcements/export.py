"""CSV exports of acknowledgements and poll answers.

Rule: an anonymous poll is exported as counts per option, never with voters.
"""

from __future__ import annotations

import csv
from datetime import datetime
from typing import TextIO

from sqlalchemy import func, select

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
        select(Receipt.announcement_id, Announcement.text, PersonRow.email, PersonRow.name,
               PersonRow.department, PersonRow.location, Receipt.created_at)
        .join(Announcement, Announcement.id == Receipt.announcement_id)
        .join(PersonRow, PersonRow.id == Receipt.person_id)
        .order_by(Receipt.announcement_id, Receipt.created_at)
    )
    if since is not None:
        query = query.where(Receipt.created_at >= since)
    n = 0
    with db.session() as s:
        for ann_id, text, email, name, dept, loc, at in s.execute(query).yield_per(2000):
            writer.writerow([ann_id, text.splitlines()[0][:80], email, name, dept, loc or "",
                             at.isoformat()])
            n += 1
    return n


def export_votes(db: Database, out: TextIO, since: datetime | None = None) -> int:
    writer = csv.writer(out)
    writer.writerow(VOTE_HEADER)
    n = 0
    with db.session() as s:
        polls = select(Announcement).where(Announcement.kind == "poll").order_by(Announcement.id)
        if since is not None:
            polls = polls.where(Announcement.created_at >= since)
        for poll in s.execute(polls).scalars():
            if poll.anonymous:
                rows = s.execute(
                    select(PollOption.label, func.count(Vote.id))
                    .outerjoin(Vote, Vote.option_id == PollOption.id)
                    .where(PollOption.announcement_id == poll.id)
                    .group_by(PollOption.position, PollOption.label)
                    .order_by(PollOption.position)
                ).tuples()
                for label, count in rows:
                    writer.writerow([poll.id, poll.text, label, "", "", "", count, ""])
                    n += 1
                continue
            rows2 = s.execute(
                select(PollOption.label, PersonRow.email, PersonRow.name, PersonRow.department,
                       Vote.created_at)
                .join(Vote, Vote.option_id == PollOption.id)
                .join(PersonRow, PersonRow.id == Vote.person_id)
                .where(PollOption.announcement_id == poll.id)
                .order_by(PollOption.position, PersonRow.email)
            ).tuples()
            for label, email, name, dept, at in rows2:
                writer.writerow([poll.id, poll.text, label, email, name, dept, 1, at.isoformat()])
                n += 1
    return n
