"""What recipients do: acknowledge ("Got it"), vote, answer a native poll.

Rules, each enforced here:
- Only people it was delivered to may acknowledge or answer it.
- One receipt per person; a second press changes nothing and is answered "Already
  acknowledged" (also when it raced the first), and every copy the
  person got (the announcement and its nudges) then shows it acknowledged.
- A single-choice answer replaces the old one; in a ``multi`` poll a click
  toggles that option. After ``closes:`` answers are refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from announcements import audit, queries, render
from announcements.domain import Domain
from announcements.errors import CrierError, NotFound
from announcements.types import (
    DeliveryAction,
    DeliveryStatus,
    Kind,
    OutboundMessage,
    Person,
    Purpose,
    Reply,
)
from storage.models import Announcement, Delivery, PollOption, Receipt, Vote


@dataclass(frozen=True)
class Responses:
    domain: Domain

    def acknowledge(self, actor: Person, ann_id: int, message_ref: str | None = None) -> Reply:
        now = self.domain.clock.now()
        with self.domain.db.session() as s:
            ann = _received(s, actor, ann_id)
            if not ann.ack:
                raise CrierError(f"#{ann_id} does not ask for an acknowledgement")
            existing = s.execute(
                select(Receipt).where(col(Receipt.announcement_id) == ann_id,
                                      col(Receipt.person_id) == actor.id)
            ).scalar_one_or_none()
            at = existing.created_at if existing else now
            already = existing is not None
            clicked, platform = s.execute(
                select(col(Delivery.purpose), col(Delivery.platform)).where(
                    col(Delivery.announcement_id) == ann_id, col(Delivery.person_id) == actor.id,
                    col(Delivery.message_ref) == message_ref)
            ).tuples().first() or (None, None) if message_ref else (None, None)
            if existing is None:
                try:
                    with s.begin_nested():
                        s.add(Receipt(announcement_id=ann_id, person_id=actor.id, created_at=now,
                                      platform=platform))
                except IntegrityError:  # a concurrent press stored it: this one is a repeat
                    already = True
                    at = s.execute(
                        select(col(Receipt.created_at)).where(
                            col(Receipt.announcement_id) == ann_id,
                            col(Receipt.person_id) == actor.id)
                    ).scalar_one_or_none() or now
                else:
                    audit.record(s, now, "acknowledged", actor_id=actor.id, announcement_id=ann_id)
                    _refresh_copies(s, ann_id, actor.id, message_ref, now)
            updated = render.announcement(ann, [], queries.name(s, ann.author_id),
                                          acknowledged_at=render.local(at, actor.timezone),
                                          nudge=clicked == Purpose.NUDGE)
            note = "Already acknowledged" if already else "Acknowledged"
            return Reply(update=updated, message=OutboundMessage(text=f"✓ {note} #{ann_id}."))

    def vote(self, actor: Person, ann_id: int, position: int) -> Reply:
        now = self.domain.clock.now()
        with self.domain.db.session() as s:
            ann = _received(s, actor, ann_id)
            if ann.kind != Kind.POLL:
                raise CrierError(f"#{ann_id} is not a poll")
            options = queries.options(s, ann_id)
            author = queries.name(s, ann.author_id)
            if _closed(ann, now):
                return Reply(
                    update=render.announcement(ann, options, author,
                                               counts=queries.counts(s, ann_id), closed=True),
                    message=OutboundMessage(
                        text=f"Poll #{ann_id} is closed; answers are no longer taken."),
                )
            chosen = next((o for o in options if o.position == position), None)
            if chosen is None:
                raise NotFound(f"poll #{ann_id} has no option {position}")
            mine = s.execute(
                select(Vote).where(col(Vote.announcement_id) == ann_id,
                                   col(Vote.person_id) == actor.id)
            ).scalars().all()
            option_id = _id(chosen)
            had = any(v.option_id == option_id for v in mine)
            if ann.multi:
                if had:
                    s.execute(delete(Vote).where(col(Vote.option_id) == option_id,
                                                 col(Vote.person_id) == actor.id))
                else:
                    s.add(Vote(announcement_id=ann_id, option_id=option_id, person_id=actor.id,
                               created_at=now))
            elif not had:
                s.execute(delete(Vote).where(col(Vote.announcement_id) == ann_id,
                                             col(Vote.person_id) == actor.id))
                s.add(Vote(announcement_id=ann_id, option_id=option_id, person_id=actor.id,
                           created_at=now))
            s.flush()
            audit.record(s, now, "voted", actor_id=actor.id, announcement_id=ann_id)
            picked = _my_choices(s, ann_id, actor.id, options)
            text = (f"Your answer to #{ann_id}: {', '.join(picked)}." if picked
                    else f"You have no answer to #{ann_id} now.")
            return Reply(
                update=render.announcement(ann, options, author,
                                           counts=queries.counts(s, ann_id)),
                message=OutboundMessage(text=text),
            )

    def answer(self, actor: Person, ann_id: int, positions: Iterable[int]) -> Reply:
        """Replace the person's whole answer at once (a native poll reports the full
        choice); no positions retracts it. A single-choice poll takes at most one."""
        now = self.domain.clock.now()
        wanted = sorted(set(positions))
        with self.domain.db.session() as s:
            ann = _received(s, actor, ann_id)
            if ann.kind != Kind.POLL:
                raise CrierError(f"#{ann_id} is not a poll")
            if _closed(ann, now):
                raise CrierError(f"poll #{ann_id} is closed; answers are no longer taken")
            if len(wanted) > 1 and not ann.multi:
                raise CrierError(f"poll #{ann_id} takes one answer")
            options = {o.position: o for o in queries.options(s, ann_id)}
            if missing := [p for p in wanted if p not in options]:
                raise NotFound(f"poll #{ann_id} has no option {missing[0]}")
            s.execute(delete(Vote).where(col(Vote.announcement_id) == ann_id,
                                         col(Vote.person_id) == actor.id))
            s.add_all(Vote(announcement_id=ann_id, option_id=_id(options[p]), person_id=actor.id,
                           created_at=now) for p in wanted)
            audit.record(s, now, "voted" if wanted else "retracted", actor_id=actor.id,
                         announcement_id=ann_id)
            picked = [options[p].label for p in wanted]
            return Reply.text(f"Your answer to #{ann_id}: {', '.join(picked)}." if picked
                              else f"You have no answer to #{ann_id} now.")


def _id(option: PollOption) -> int:
    assert option.id is not None  # stored options have ids
    return option.id


def _closed(ann: Announcement, now: datetime) -> bool:
    return ann.closed_at is not None or bool(ann.closes_at and ann.closes_at <= now)


def _received(s: Session, actor: Person, ann_id: int) -> Announcement:
    """Only people it was sent to may acknowledge or answer it."""
    ann = s.get(Announcement, ann_id)
    got = s.execute(
        select(col(Delivery.id)).where(
            col(Delivery.announcement_id) == ann_id,
            col(Delivery.person_id) == actor.id,
            col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
            # Delivered, or delivered and now being updated (an edit, a closed poll).
            or_(col(Delivery.status) == DeliveryStatus.DELIVERED.value,
                col(Delivery.action) == DeliveryAction.UPDATE.value),
        ).limit(1)
    ).first()
    if ann is None or got is None:
        raise NotFound(
            f"#{ann_id} was not sent to you",
            "You can only answer announcements in your own inbox.",
        )
    return ann


def _refresh_copies(s: Session, ann_id: int, person_id: int, clicked: str | None,
                    now: datetime) -> None:
    """Queue updates of the person's other delivered copies (not the clicked one)."""
    query = (
        update(Delivery)
        .where(col(Delivery.announcement_id) == ann_id, col(Delivery.person_id) == person_id,
               col(Delivery.purpose).in_([Purpose.ANNOUNCEMENT.value, Purpose.NUDGE.value]),
               col(Delivery.status) == DeliveryStatus.DELIVERED.value)
        .values(status=DeliveryStatus.PENDING.value, action=DeliveryAction.UPDATE.value,
                next_attempt_at=now, updated_at=now)
    )
    if clicked:
        query = query.where(col(Delivery.message_ref) != clicked)
    # No Delivery objects are loaded in this session: nothing to synchronize.
    s.execute(query.execution_options(synchronize_session=False))


def _my_choices(s: Session, ann_id: int, pid: int, options: list[PollOption]) -> list[str]:
    ids = set(s.execute(select(col(Vote.option_id)).where(
        col(Vote.announcement_id) == ann_id, col(Vote.person_id) == pid)).scalars())
    return [o.label for o in options if o.id in ids]
