"""The App Home tab: what waits for this person, read from the database.

Everyone sees the announcements they have not confirmed yet and the polls
still open to them. Authors also see their drafts and recent sends; approvers
what waits for their approval. Buttons here carry the same actions as in
messages, so a click anywhere has the same effect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlmodel import Session, col

from announcements import render, views
from announcements.policy import grants_of
from announcements.types import (
    Action,
    DeliveryStatus,
    Kind,
    Person,
    Purpose,
    Role,
    Status,
    Verb,
)
from bot.inbound import NOT_IN_DIRECTORY
from bot.slack.blocks import VIEW_MAX_BLOCKS, Block, actions, button, escape, mrkdwn, plain
from storage.db import Database
from storage.models import Announcement, Delivery, PollOption, Receipt, Vote
from storage.models import Person as PersonRow

#: Items per list; ``/crier list`` shows more.
LIST_ITEMS = 6
OPEN_FORM = "crier_open_form"
RECENT = (Status.SCHEDULED.value, Status.SENDING.value, Status.SENT.value)
LIVE = (Status.SENDING.value, Status.SENT.value)


def _first_line(text: str, width: int = 120) -> str:
    line = next((x.strip() for x in text.splitlines() if x.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def _heading(text: str) -> list[Block]:
    return [{"type": "divider"}, {"type": "header", "text": plain(text)}]


def _item(ann: Announcement, detail: str, accessory: Block | None = None) -> Block:
    text = f"*{escape(render.label(ann))}* · {escape(detail)}\n{escape(_first_line(ann.text))}"
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def _received(me: int) -> Any:
    return exists().where(col(Delivery.announcement_id) == col(Announcement.id),
                          col(Delivery.person_id) == me,
                          col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
                          col(Delivery.status) == DeliveryStatus.DELIVERED.value)


def _to_confirm(s: Session, me: Person) -> list[Block]:
    acked = exists().where(col(Receipt.announcement_id) == col(Announcement.id),
                           col(Receipt.person_id) == me.id)
    rows = s.execute(
        select(Announcement).where(_received(me.id), col(Announcement.ack).is_(True),
                                   col(Announcement.status).in_(LIVE), ~acked)
        .order_by(col(Announcement.id).desc()).limit(LIST_ITEMS)
    ).scalars().all()
    if not rows:
        return []
    blocks = _heading("To confirm")
    for ann in rows:
        sent = render.local(ann.sent_at, me.timezone) if ann.sent_at else "recently"
        blocks.append(_item(ann, f"sent {sent}",
                            button(Action.of(Verb.ACK, ann.id), "Got it", "primary")))
    return blocks


def _open_polls(s: Session, me: Person, now: datetime) -> list[Block]:
    rows = s.execute(
        select(Announcement).where(
            _received(me.id), col(Announcement.kind) == Kind.POLL.value,
            col(Announcement.status).in_(LIVE),
            col(Announcement.closed_at).is_(None),
            or_(col(Announcement.closes_at).is_(None), col(Announcement.closes_at) > now))
        .order_by(col(Announcement.id).desc()).limit(LIST_ITEMS)
    ).scalars().all()
    if not rows:
        return []
    blocks = _heading("Open polls")
    for ann in rows:
        assert ann.id is not None
        options = s.execute(select(PollOption).where(col(PollOption.announcement_id) == ann.id)
                            .order_by(col(PollOption.position))).scalars().all()
        mine = set(s.execute(select(col(Vote.option_id)).where(
            col(Vote.announcement_id) == ann.id, col(Vote.person_id) == me.id)).scalars())
        answered = [o.label for o in options if o.id in mine]
        closes = f"closes {render.local(ann.closes_at, me.timezone)}" if ann.closes_at else "open"
        note = f"you answered {', '.join(answered)}" if answered else "not answered yet"
        blocks.append(_item(ann, f"{closes} · {note}"))
        blocks += actions([button(Action.of(Verb.VOTE, ann.id, o.position),
                                  ("✓ " if o.id in mine else "") + o.label)
                           for o in options], block_id=f"poll_{ann.id}")
    return blocks


def _drafts(s: Session, me: Person) -> list[Block]:
    rows = s.execute(
        select(Announcement).where(
            col(Announcement.author_id) == me.id,
            col(Announcement.status).in_([Status.DRAFT.value, Status.PENDING_APPROVAL.value]))
        .order_by(col(Announcement.id).desc()).limit(LIST_ITEMS)
    ).scalars().all()
    blocks = _heading("Your drafts")
    if not rows:
        return blocks + [{"type": "context", "elements": [mrkdwn("No drafts waiting.")]}]
    for ann in rows:
        words = "waiting for approval" if ann.status == Status.PENDING_APPROVAL else "draft"
        accessory = (button(Action.of(Verb.SUBMIT, ann.id), "Submit for approval", "primary")
                     if ann.status == Status.DRAFT else None)
        blocks.append(_item(ann, f"{words} · to {ann.audience}", accessory))
    return blocks


def _recent(s: Session, me: Person) -> list[Block]:
    rows = s.execute(
        select(Announcement).where(col(Announcement.author_id) == me.id,
                                   col(Announcement.status).in_(RECENT))
        .order_by(col(Announcement.id).desc()).limit(LIST_ITEMS)
    ).scalars().all()
    if not rows:
        return []
    blocks = _heading("Recent sends")
    for ann in rows:
        assert ann.id is not None
        counts = views.delivery_counts(s, ann.id)
        total = sum(n for st, n in counts.items() if st != DeliveryStatus.CANCELLED)
        done = counts.get(DeliveryStatus.DELIVERED, 0)
        detail = f"{ann.status.replace('_', ' ')} · delivered {done} of {total}"
        if ann.ack:
            detail += f" · confirmed {views.acknowledged(s, ann.id)}"
        blocks.append(_item(ann, detail))
    return blocks


def _approvals(s: Session, me: Person) -> list[Block]:
    asked = exists().where(col(Delivery.announcement_id) == col(Announcement.id),
                           col(Delivery.person_id) == me.id,
                           col(Delivery.purpose) == Purpose.APPROVAL.value)
    rows = s.execute(
        select(Announcement, col(PersonRow.name))
        .join(PersonRow, col(PersonRow.id) == col(Announcement.author_id))
        .where(and_(asked, col(Announcement.status) == Status.PENDING_APPROVAL.value,
                    col(Announcement.author_id) != me.id))
        .order_by(col(Announcement.id)).limit(LIST_ITEMS)
    ).tuples().all()
    if not rows:
        return []
    blocks = _heading("Waiting for your approval")
    for ann, author in rows:
        blocks.append(_item(ann, f"by {author} · to {ann.audience} ({ann.audience_size} people)"))
        blocks += actions([button(Action.of(Verb.APPROVE, ann.id), "Approve", "primary"),
                           button(Action.of(Verb.REJECT, ann.id), "Reject", "danger")],
                          block_id=f"approval_{ann.id}")
    return blocks


def home_blocks(db: Database, me: Person | None, now: datetime) -> list[Block]:
    if me is None:
        return [{"type": "section", "text": mrkdwn(escape(NOT_IN_DIRECTORY))}]
    blocks: list[Block] = [{"type": "section", "text": mrkdwn(
        f"Hello {escape(me.name)}. Announcements from your company reach you here; "
        "type `/crier help` anywhere for the commands.")}]
    with db.session() as s:
        grants = grants_of(s, me.id)
        if grants.has(Role.AUTHOR):
            blocks += actions([button(OPEN_FORM, "New announcement", "primary")], "home_new")
        mine = _to_confirm(s, me) + _open_polls(s, me, now)
        blocks += mine or [{"type": "context", "elements": [mrkdwn("You are all caught up.")]}]
        if grants.has(Role.APPROVER):
            blocks += _approvals(s, me)
        if grants.has(Role.AUTHOR):
            blocks += _drafts(s, me) + _recent(s, me)
    return blocks[:VIEW_MAX_BLOCKS]


def home_view(db: Database, me: Person | None, now: datetime) -> dict[str, Any]:
    return {"type": "home", "callback_id": "crier_home", "blocks": home_blocks(db, me, now)}
