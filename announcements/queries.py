"""Small reads that several rooms share: an announcement by id, a person's
name, a poll's options and counts."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result, func, select
from sqlmodel import Session, col

from announcements.errors import NotAllowed, NotFound
from announcements.types import Person
from storage.models import Announcement, PollOption, Vote
from storage.models import Person as PersonRow


def announcement(s: Session, ann_id: int) -> Announcement:
    ann = s.get(Announcement, ann_id)
    if ann is None:
        raise NotFound(f"there is no announcement #{ann_id}", "See `/crier list`.")
    return ann


def own(s: Session, actor: Person, ann_id: int, verb: str) -> Announcement:
    """Only its author may submit a draft."""
    ann = announcement(s, ann_id)
    if ann.author_id != actor.id:
        raise NotAllowed(f"#{ann_id} is not yours to {verb}", "Only its author can do that.")
    return ann


def name(s: Session, person_id: int | None) -> str:
    row = s.get(PersonRow, person_id) if person_id else None
    return row.name if row else "someone"


def options(s: Session, ann_id: int) -> list[PollOption]:
    return list(s.execute(select(PollOption).where(col(PollOption.announcement_id) == ann_id)
                          .order_by(col(PollOption.position))).scalars())


def counts(s: Session, ann_id: int) -> dict[int, int]:
    """Votes per option position."""
    rows = s.execute(
        select(col(PollOption.position), func.count(col(Vote.id)))
        .join(Vote, col(Vote.option_id) == col(PollOption.id))
        .where(col(PollOption.announcement_id) == ann_id)
        .group_by(col(PollOption.position))
    ).tuples().all()
    return {pos: n for pos, n in rows}


def status_words(status: str) -> str:
    return status.replace("_", " ")


def changed(result: Result[Any]) -> int:
    """Rows an UPDATE changed."""
    return cast(CursorResult[Any], result).rowcount
