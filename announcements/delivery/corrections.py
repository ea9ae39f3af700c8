"""Recall and correct what was already sent: ``/crier recall ID`` and
``/crier edit ID NEW TEXT``.

Rules, each enforced here:
- The author or an admin may recall an announcement that is sending or sent.
  Every delivered copy (announcement and nudges) is deleted through the
  delivery engine, copies not yet sent are cancelled, and nothing more is sent.
- The author or an admin may edit an announcement. A draft just takes the new
  text. Once approved, an edit needs approval again: by an approver other than
  the editor whose scope covers the whole audience. Until then recipients keep
  the approved text; once approved, every delivered copy is updated in place
  and copies not yet sent go out with the new text.
- A newer edit supersedes one still waiting for approval; an approver always
  approves exactly the text shown in their request.
- Every transition is an audit event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select, update
from sqlmodel import Session, col

from announcements import audit, queries, render
from announcements.audience import resolve
from announcements.delivery.fanout import enqueue
from announcements.delivery.outbox import Claimed
from announcements.domain import Domain
from announcements.drafting import check_length
from announcements.errors import CrierError, NotAllowed, NotFound
from announcements.policy import approvers_for, grants_of, may_approve, uncovered
from announcements.queries import changed
from announcements.types import (
    BULK_PURPOSES,
    Action,
    Button,
    DeliveryAction,
    DeliveryStatus,
    OutboundMessage,
    Person,
    Purpose,
    Reply,
    Role,
    Status,
    Verb,
)
from storage.models import Announcement, Correction, Delivery

PENDING, APPROVED, REJECTED, SUPERSEDED = "pending_approval", "approved", "rejected", "superseded"
RECALLABLE = (Status.SENDING, Status.SENT)
EDITABLE = (Status.APPROVED, Status.SCHEDULED, Status.SENDING, Status.SENT)
BULK = [p.value for p in BULK_PURPOSES]
#: Copies that are (or are about to be) in someone's chat.
_DELIVERED = and_(col(Delivery.message_ref).is_not(None),
                  or_(col(Delivery.status) == DeliveryStatus.DELIVERED.value,
                      and_(col(Delivery.status) == DeliveryStatus.PENDING.value,
                           col(Delivery.action) != DeliveryAction.SEND.value)))


class Command(Protocol):
    """What the router hands over for ``/crier recall`` and ``/crier edit``."""

    text: str

    def id_arg(self) -> int | None: ...


@dataclass(frozen=True)
class Corrections:
    domain: Domain

    # -- wiring ----------------------------------------------------------------------

    def commands(self) -> dict[str, Callable[[Person, Any, dict[str, Any]], Reply]]:
        """``Router.extensions`` handlers."""
        return {"recall": lambda p, c, _context: self.recall(p, _id(c)),
                "edit": lambda p, c, _context: self.edit(p, _id(c), c.text)}


    # -- recall ----------------------------------------------------------------------

    def recall(self, actor: Person, ann_id: int) -> Reply:
        now = self.domain.clock.now()
        with self.domain.db.session() as s:
            ann = self._mine(s, actor, ann_id, "recall")
            if ann.status not in RECALLABLE:
                raise CrierError(*_not_recallable(ann))
            claimed = s.execute(
                update(Announcement)
                .where(col(Announcement.id) == ann_id,
                       col(Announcement.status) == ann.status)
                .values(status=Status.RECALLED.value, updated_at=now))
            if changed(claimed) != 1:
                raise CrierError(f"#{ann_id} changed just now", f"See `/crier status {ann_id}`.")
            bulk = and_(col(Delivery.announcement_id) == ann_id,
                        col(Delivery.purpose).in_(BULK))
            cancelled = changed(s.execute(
                update(Delivery)
                .where(bulk, col(Delivery.status) == DeliveryStatus.PENDING.value,
                       col(Delivery.action) == DeliveryAction.SEND.value)
                .values(status=DeliveryStatus.CANCELLED.value, updated_at=now,
                        error="recalled before it was sent")))
            deleting = changed(s.execute(
                update(Delivery).where(bulk, _DELIVERED)
                .values(status=DeliveryStatus.PENDING.value, action=DeliveryAction.DELETE.value,
                        attempts=0, next_attempt_at=now, updated_at=now, error=None)))
            self._supersede(s, ann_id, now)
            audit.record(s, now, "recalled", actor_id=actor.id, announcement_id=ann_id,
                         deleting=deleting, cancelled=cancelled)
            copies = "message" if deleting == 1 else "messages"
            text = f"Recalling #{ann_id}: deleting {deleting} delivered {copies}"
            if cancelled:
                text += f"; {cancelled} not yet sent will not be sent"
            return Reply.text(f"{text}. Follow it with `/crier status {ann_id}`.")

    # -- edit ------------------------------------------------------------------------

    def edit(self, actor: Person, ann_id: int, text: str) -> Reply:
        now = self.domain.clock.now()
        text = text.strip()
        with self.domain.db.session() as s:
            ann = self._mine(s, actor, ann_id, "edit")
            _check_text(ann, text)
            if text == ann.text:
                raise CrierError(f"#{ann_id} already says exactly that",
                                 "Type the whole new text after the number.")
            if ann.status == Status.DRAFT:
                ann.text, ann.updated_at = text, now
                audit.record(s, now, "edited", actor_id=actor.id, announcement_id=ann_id)
                resolved = resolve(s, ann.audience)
                return Reply(message=render.preview(ann, queries.options(s, ann_id),
                                                    resolved.breakdown(), actor.timezone))
            if ann.status == Status.PENDING_APPROVAL:
                raise CrierError(
                    f"#{ann_id} is waiting for approval, so its text cannot change under the "
                    "approvers",
                    f"Cancel it (`/crier cancel {ann_id}`) and draft it again with the new text.")
            if ann.status not in EDITABLE:
                raise CrierError(f"#{ann_id} is {ann.status.replace('_', ' ')}; it cannot be "
                                 "edited any more", "Draft a new announcement instead.")
            resolved = resolve(s, ann.audience)
            approvers = approvers_for(s, resolved.members, actor.id)
            if not approvers:
                raise CrierError(
                    f"nobody but you may approve an edit of #{ann_id}: no other approver's "
                    f"scope covers {ann.audience}",
                    "Ask an admin to grant an approver role, e.g. "
                    "`crier roles grant EMAIL approver *`.")
            superseded = self._supersede(s, ann_id, now)
            fix = Correction(announcement_id=ann_id, text=text, status=PENDING,
                             editor_id=actor.id, created_at=now)
            s.add(fix)
            s.flush()
            self._queue(s, ann_id, approvers, Purpose.EDIT_REQUEST, now)
            audit.record(s, now, "edit_requested", actor_id=actor.id, announcement_id=ann_id,
                         correction=fix.id, approvers=len(approvers), superseded=superseded)
            who = "approver" if len(approvers) == 1 else "approvers"
            return Reply.text(
                f"Your edit of #{ann_id} went to {len(approvers)} {who}. Recipients keep the "
                "current text until it is approved; then every delivered copy is updated in "
                "place.")

    def approve_edit(self, actor: Person, action: Action, value: str | None = None) -> Reply:
        """Another approver, covering the whole audience, approves exactly this edit."""
        now = self.domain.clock.now()
        with self.domain.db.session() as s:
            ann, fix = self._decidable(s, actor, action)
            fix.status, fix.decided_by_id, fix.decided_at = APPROVED, actor.id, now
            ann.text, ann.updated_at = fix.text, now
            bulk = and_(col(Delivery.announcement_id) == ann.id,
                        col(Delivery.purpose).in_(BULK))
            updating = changed(s.execute(
                update(Delivery).where(bulk, col(Delivery.status) == DeliveryStatus.DELIVERED.value,
                                       col(Delivery.message_ref).is_not(None))
                .values(status=DeliveryStatus.PENDING.value, action=DeliveryAction.UPDATE.value,
                        attempts=0, next_attempt_at=now, updated_at=now, error=None)))
            in_flight = s.execute(select(func.count()).select_from(Delivery).where(
                bulk, col(Delivery.status) == DeliveryStatus.SENDING.value)).scalar_one()
            fix.targets = updating + in_flight
            _close_requests(s, fix, actor.id, now)
            self._queue(s, fix.announcement_id, [fix.editor_id], Purpose.EDIT_OUTCOME, now)
            audit.record(s, now, "edit_approved", actor_id=actor.id,
                         announcement_id=fix.announcement_id, correction=fix.id,
                         updating=fix.targets)
            copies = "copy" if fix.targets == 1 else "copies"
            return Reply(update=_decided(ann, fix, f"approved by {actor.name}"),
                         message=OutboundMessage(
                             text=f"Approved the edit of #{ann.id}: {fix.targets} delivered "
                                  f"{copies} will be updated in place."))

    def reject_edit(self, actor: Person, action: Action, value: str | None = None) -> Reply:
        now = self.domain.clock.now()
        reason = (value or "").strip()[:500] or None
        with self.domain.db.session() as s:
            ann, fix = self._decidable(s, actor, action)
            fix.status, fix.decided_by_id, fix.decided_at = REJECTED, actor.id, now
            fix.reason = reason
            _close_requests(s, fix, actor.id, now)
            self._queue(s, fix.announcement_id, [fix.editor_id], Purpose.EDIT_OUTCOME, now)
            audit.record(s, now, "edit_rejected", actor_id=actor.id,
                         announcement_id=fix.announcement_id, correction=fix.id, reason=reason)
            return Reply(update=_decided(ann, fix, f"rejected by {actor.name}"),
                         message=OutboundMessage(
                             text=f"Rejected the edit of #{ann.id}; the editor has been told. "
                                  "Recipients keep the current text."))

    def _queue(self, s: Session, ann_id: int, people: list[int], purpose: Purpose,
               now: datetime) -> None:
        """A fresh message to each person; their one row for this purpose is reused."""
        have = set(s.execute(select(col(Delivery.person_id)).where(
            col(Delivery.announcement_id) == ann_id, col(Delivery.purpose) == purpose.value,
            col(Delivery.person_id).in_(people))).scalars())
        if have:
            s.execute(update(Delivery).where(
                col(Delivery.announcement_id) == ann_id, col(Delivery.purpose) == purpose.value,
                col(Delivery.person_id).in_(have),
                col(Delivery.status) != DeliveryStatus.UNREACHABLE.value,
            ).values(status=DeliveryStatus.PENDING.value, action=DeliveryAction.SEND.value,
                     attempts=0, next_attempt_at=now, updated_at=now, error=None,
                     lease_owner=None, leased_until=None))
        fresh = [p for p in people if p not in have]
        if fresh:
            enqueue(s, self.domain.config.channels, ann_id, fresh, purpose, now)

    # -- checks ------------------------------------------------------------------------

    def _mine(self, s: Session, actor: Person, ann_id: int, verb: str) -> Announcement:
        """The author or an admin."""
        ann = s.get(Announcement, ann_id)
        if ann is None:
            raise NotFound(f"there is no announcement #{ann_id}", "See `/crier list`.")
        if ann.author_id != actor.id and not grants_of(s, actor.id).is_admin:
            raise NotAllowed(f"#{ann_id} is not yours to {verb}",
                             "Only its author or an admin can do that.")
        return ann

    def _decidable(self, s: Session, actor: Person, action: Action
                   ) -> tuple[Announcement, Correction]:
        fix = s.get(Correction, action.arg) if action.arg else None
        ann = s.get(Announcement, action.announcement_id)
        if fix is None or ann is None or fix.announcement_id != ann.id:
            raise NotFound(f"there is no such edit of #{action.announcement_id}",
                           f"See `/crier status {action.announcement_id}`.")
        if fix.editor_id == actor.id:
            raise NotAllowed(f"you wrote this edit of #{ann.id}, so you cannot decide on it",
                             "Another approver must; nobody approves their own edit.")
        if fix.status != PENDING:
            state = {SUPERSEDED: "was replaced by a newer edit"}.get(
                fix.status, f"is already {fix.status} by {queries.name(s, fix.decided_by_id)}")
            raise CrierError(f"this edit of #{ann.id} {state}", f"See `/crier status {ann.id}`.")
        if ann.status not in EDITABLE:
            raise CrierError(f"#{ann.id} is {ann.status}; the edit no longer applies")
        resolved = resolve(s, ann.audience)
        grants = grants_of(s, actor.id)
        if not may_approve(grants, resolved.members, fix.editor_id):
            outside = sorted({m.department for m in uncovered(grants, Role.APPROVER,
                                                              resolved.members)})
            raise NotAllowed(
                f"your approver role does not cover the whole audience of #{ann.id} "
                f"({', '.join(outside[:4]) or 'no approver role'})",
                "An approver whose scope covers everyone it went to must decide.")
        claimed = s.execute(update(Correction).where(
            col(Correction.id) == fix.id, col(Correction.status) == PENDING)
            .values(status="deciding"))
        if changed(claimed) != 1:
            raise CrierError(f"this edit of #{ann.id} was decided just now",
                             f"See `/crier status {ann.id}`.")
        s.refresh(fix)
        return ann, fix

    def _supersede(self, s: Session, ann_id: int, now: datetime) -> int:
        return changed(s.execute(update(Correction).where(
            col(Correction.announcement_id) == ann_id, col(Correction.status) == PENDING)
            .values(status=SUPERSEDED, decided_at=now)))


# -- rendering (the delivery engine's renderers for the rows written here) --------------


def _latest(s: Session, ann_id: int) -> Correction | None:
    return s.execute(select(Correction).where(col(Correction.announcement_id) == ann_id)
                     .order_by(col(Correction.id).desc()).limit(1)).scalar_one_or_none()


def edit_requests(s: Session, rows: list[Claimed], now: datetime) -> dict[int, OutboundMessage]:
    """The latest edit to each approver: Approve edit / Reject edit while it waits,
    the decision once made; nothing for a request decided before it went out."""
    out: dict[int, OutboundMessage] = {}
    for r in rows:
        ann, fix = s.get(Announcement, r.announcement_id), _latest(s, r.announcement_id)
        if ann is not None and fix is not None and (msg := _request(s, ann, fix, r)):
            out[r.id] = msg
    return out


def edit_outcomes(s: Session, rows: list[Claimed], now: datetime) -> dict[int, OutboundMessage]:
    """The decision on the latest edit, to its editor."""
    out: dict[int, OutboundMessage] = {}
    for r in rows:
        ann, fix = s.get(Announcement, r.announcement_id), _latest(s, r.announcement_id)
        if ann is not None and fix is not None and (msg := _outcome(s, ann, fix)):
            out[r.id] = msg
    return out


def _request(s: Session, ann: Announcement, fix: Correction, row: Claimed
             ) -> OutboundMessage | None:
    if fix.status == PENDING:
        if row.action != DeliveryAction.SEND:
            return None
        editor = queries.name(s, fix.editor_id)
        return OutboundMessage(
            title=f"{editor} asks you to approve an edit of {render.label(ann)}",
            text=fix.text,
            footer=f"Now it says: {_short(ann.text)} · To: {ann.audience} "
                   f"({ann.audience_size} people) · Delivered copies are updated in place",
            buttons=(Button(Action.of(Verb.APPROVE_EDIT, ann.id, fix.id), "Approve edit",
                                   "primary"),
                     Button(Action.of(Verb.REJECT_EDIT, ann.id, fix.id), "Reject edit",
                                   "danger")),
            announcement_id=ann.id, purpose=Purpose.EDIT_REQUEST.value)
    if row.action == DeliveryAction.SEND:
        return None  # decided or superseded before this request went out
    verdict = {APPROVED: "approved", REJECTED: "rejected"}.get(fix.status, fix.status)
    by = f" by {queries.name(s, fix.decided_by_id)}" if fix.decided_by_id else ""
    return _decided(ann, fix, verdict + by)


def _outcome(s: Session, ann: Announcement, fix: Correction) -> OutboundMessage | None:
    by = queries.name(s, fix.decided_by_id)
    if fix.status == APPROVED:
        return OutboundMessage(
            title=f"Your edit of {render.label(ann)} was approved by {by}",
            text=f"{fix.targets} delivered copies are being updated in place. Follow it "
                 f"with /crier status {ann.id}.",
            announcement_id=ann.id, purpose=Purpose.EDIT_OUTCOME.value)
    if fix.status == REJECTED:
        reason = f"\nReason: {fix.reason}" if fix.reason else ""
        return OutboundMessage(
            title=f"Your edit of {render.label(ann)} was rejected by {by}",
            text=f"Recipients keep the current text.{reason}",
            announcement_id=ann.id, purpose=Purpose.EDIT_OUTCOME.value)
    return None


# -- helpers ------------------------------------------------------------------------------


def _id(command: Command) -> int:
    ann_id = command.id_arg()
    assert ann_id is not None  # the grammar requires it
    return ann_id


def _check_text(ann: Announcement, text: str) -> None:
    if not text:
        raise CrierError("the new text is empty", "Usage: /crier edit ID NEW TEXT")
    check_length(text, ann.kind)


def _not_recallable(ann: Announcement) -> tuple[str, str]:
    if ann.status == Status.RECALLED:
        return f"#{ann.id} is already recalled", f"See `/crier status {ann.id}`."
    if ann.status in (Status.DRAFT, Status.PENDING_APPROVAL, Status.APPROVED, Status.SCHEDULED):
        return (f"#{ann.id} has not been sent yet, so there is nothing to recall",
                f"To stop it use `/crier cancel {ann.id}`.")
    return f"#{ann.id} is {ann.status}; nothing was sent", f"See `/crier status {ann.id}`."


def _short(text: str, limit: int = 200) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _decided(ann: Announcement, fix: Correction, verdict: str) -> OutboundMessage:
    return OutboundMessage(title=f"Edit of {render.label(ann)}: {verdict}", text=fix.text,
                           announcement_id=ann.id, purpose=Purpose.EDIT_REQUEST.value)


def _close_requests(s: Session, fix: Correction, decider: int, now: datetime) -> None:
    """Once decided, the other approvers' requests say so instead of offering buttons."""
    mine = and_(col(Delivery.announcement_id) == fix.announcement_id,
                col(Delivery.purpose) == Purpose.EDIT_REQUEST.value,
                col(Delivery.person_id) != decider)
    s.execute(update(Delivery).where(
        mine, col(Delivery.status) == DeliveryStatus.PENDING.value,
        col(Delivery.action) == DeliveryAction.SEND.value,
    ).values(status=DeliveryStatus.CANCELLED.value, updated_at=now,
             error="decided before it was sent"))
    s.execute(update(Delivery).where(
        mine, col(Delivery.status) == DeliveryStatus.DELIVERED.value,
    ).values(status=DeliveryStatus.PENDING.value, action=DeliveryAction.UPDATE.value,
             next_attempt_at=now, updated_at=now))
