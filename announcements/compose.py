"""What each delivery row says: one renderer per purpose, declared once in
``RENDERERS``; the delivery engine renders every claimed row through it.

Rules, each enforced here:
- Nothing is sent for a cancelled announcement (its row is cancelled instead).
- A copy updated after the person acknowledged shows "✓ Acknowledged" (and on
  which platform, if another copy was clicked) and no button; a closed poll
  shows its results.
- An approval request still pending offers Approve / Reject; once decided, a
  delivered request is updated to say who decided, and one not yet sent is not.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from announcements import personalize, queries, render
from announcements.audience import resolve
from announcements.delivery import corrections, progress
from announcements.delivery.engine import Renderer
from announcements.delivery.outbox import Claimed
from announcements.types import DeliveryAction, OutboundMessage, Purpose, Status
from storage.models import Announcement, PollOption, Receipt
from storage.models import Person as PersonRow


def _announcements(s: Session, rows: list[Claimed]) -> dict[int | None, Announcement]:
    ids = {r.announcement_id for r in rows}
    return {a.id: a for a in s.execute(
        select(Announcement).where(col(Announcement.id).in_(ids))).scalars()}


def _people(s: Session, ids: set[int]) -> dict[int | None, PersonRow]:
    return {p.id: p for p in s.execute(
        select(PersonRow).where(col(PersonRow.id).in_(ids))).scalars()}


def copies(s: Session, rows: list[Claimed], now: datetime) -> dict[int, OutboundMessage]:
    """The announcement itself, or a nudge about it, to each recipient. A text with
    placeholders is filled in for each recipient; any other is rendered once per
    announcement and purpose (the cache)."""
    out: dict[int, OutboundMessage] = {}
    anns = _announcements(s, rows)
    updates = [r for r in rows if r.action == DeliveryAction.UPDATE]
    # Recipients are read only for a text with placeholders or an updated copy (its
    # "Acknowledged" time is in their zone); otherwise a batch reads its authors alone.
    personal_anns = {i for i, a in anns.items() if personalize.is_personal(a.text)}
    readers = {r.person_id for r in rows
               if r.announcement_id in personal_anns or r.action == DeliveryAction.UPDATE}
    persons = _people(s, readers | {a.author_id for a in anns.values()})
    receipts: dict[tuple[int, int], tuple[datetime, str | None]] = {}
    if updates:
        for a_id, p_id, at, where in s.execute(
            select(col(Receipt.announcement_id), col(Receipt.person_id), col(Receipt.created_at),
                   col(Receipt.platform))
            .where(col(Receipt.announcement_id).in_({r.announcement_id for r in updates}),
                   col(Receipt.person_id).in_({r.person_id for r in updates}))
        ).tuples():
            receipts[(a_id, p_id)] = (at, where)
    cache: dict[tuple[int, str], OutboundMessage] = {}
    polls: dict[int, tuple[list[PollOption], dict[int, int] | None]] = {}
    for r in rows:
        ann = anns.get(r.announcement_id)
        if ann is None or ann.id is None or ann.status == Status.CANCELLED:
            continue
        author = persons[ann.author_id].name
        nudge = r.purpose == Purpose.NUDGE
        personal = ann.id in personal_anns
        text = personalize.fill(ann.text, persons[r.person_id]) if personal else None
        if ann.ack and (ann.id, r.person_id) in receipts:
            at, where = receipts[(ann.id, r.person_id)]
            # "✓ Acknowledged 30 Nov 10:02 on Telegram" on the copies not clicked.
            elsewhere = f" on {where.title()}" if where and where != r.platform else ""
            out[r.id] = render.announcement(
                ann, [], author, nudge=nudge, text=text,
                acknowledged_at=render.local(at, persons[r.person_id].timezone) + elsewhere)
            continue
        key = (ann.id, r.purpose)
        if key not in cache or personal:
            closed = ann.closed_at is not None
            if ann.id not in polls:
                polls[ann.id] = (queries.options(s, ann.id),
                                 queries.counts(s, ann.id) if closed else None)
            options, counts = polls[ann.id]
            cache[key] = render.announcement(ann, options, author, counts=counts,
                                             closed=closed, nudge=nudge, text=text)
        out[r.id] = cache[key]
    return out


def approval_requests(s: Session, rows: list[Claimed], now: datetime
                      ) -> dict[int, OutboundMessage]:
    """An approval request to each approver, or the decision once it is made."""
    out: dict[int, OutboundMessage] = {}
    anns = _announcements(s, rows)
    persons = _people(s, {r.person_id for r in rows} | {a.author_id for a in anns.values()} | {
        a.approved_by_id for a in anns.values() if a.approved_by_id})
    cache: dict[int, OutboundMessage] = {}
    for r in rows:
        ann = anns.get(r.announcement_id)
        if ann is None or ann.id is None:
            continue
        if ann.status != Status.PENDING_APPROVAL:
            if r.action == DeliveryAction.UPDATE:
                decider = persons.get(ann.approved_by_id or 0)
                verdict = "approved" if ann.status != Status.REJECTED else "rejected"
                out[r.id] = render.decided(
                    ann, f"{verdict} by {decider.name if decider else 'an approver'}")
            continue
        if ann.id not in cache:
            cache[ann.id] = render.approval_request(
                ann, queries.options(s, ann.id), persons[ann.author_id].name,
                resolve(s, ann.audience).breakdown(), persons[r.person_id].timezone)
        out[r.id] = cache[ann.id]
    return out


def outcomes(s: Session, rows: list[Claimed], now: datetime) -> dict[int, OutboundMessage]:
    """Approved or rejected, to the author."""
    out: dict[int, OutboundMessage] = {}
    anns = _announcements(s, rows)
    persons = _people(s, {a.author_id for a in anns.values()} | {
        a.approved_by_id for a in anns.values() if a.approved_by_id})
    for r in rows:
        ann = anns.get(r.announcement_id)
        if ann is None or ann.id is None:
            continue
        approver = persons.get(ann.approved_by_id) if ann.approved_by_id else None
        out[r.id] = render.outcome(ann, approver.name if approver else "an approver",
                                   persons[ann.author_id].timezone)
    return out


#: Every delivery purpose and the one function that says what its rows say.
RENDERERS: dict[str, Renderer] = {
    Purpose.ANNOUNCEMENT: copies,
    Purpose.NUDGE: copies,
    Purpose.APPROVAL: approval_requests,
    Purpose.OUTCOME: outcomes,
    Purpose.PROGRESS: progress.messages_for,
    Purpose.EDIT_REQUEST: corrections.edit_requests,
    Purpose.EDIT_OUTCOME: corrections.edit_outcomes,
}
