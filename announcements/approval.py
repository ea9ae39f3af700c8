"""Four eyes: submitting a draft, approving, rejecting and cancelling it.

    draft -> pending_approval -> approved -> scheduled -> sending -> sent
                 \\-> rejected          any step before sending -> cancelled

Rules, each enforced here:
- A draft goes to every approver whose scope covers the whole audience.
- Only an approver other than the author, whose scope covers the whole
  audience, may approve or reject; the first decision wins.
- The audience is frozen at approval (the approver approved these people):
  the outbox rows are written in the approving transaction, due at the send
  time; reminders get their rows at each occurrence instead.
- The author or an admin may cancel anything that has not started sending.
- Every transition is an audit event; ``Approved`` is published after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col

from announcements import audit, queries, render
from announcements.audience import Resolved, resolve
from announcements.delivery.fanout import enqueue
from announcements.domain import Domain
from announcements.errors import CrierError, NotAllowed
from announcements.events import Approved
from announcements.limits import MAX_REASON_CHARS
from announcements.policy import approvers_for, grants_of, may_approve, scope_refusal
from announcements.queries import changed, status_words
from announcements.recipients import recipients, send
from announcements.types import (
    DeliveryAction,
    DeliveryStatus,
    Kind,
    OutboundMessage,
    Person,
    Purpose,
    Reply,
    Role,
    Status,
)
from storage.models import Announcement, Delivery


@dataclass(frozen=True)
class Approval:
    domain: Domain

    def submit(self, actor: Person, ann_id: int) -> Reply:
        now = self.domain.clock.now()
        with self.domain.db.session() as s:
            ann = queries.own(s, actor, ann_id, "submit")
            if ann.status != Status.DRAFT:
                raise CrierError(
                    f"#{ann_id} is {status_words(ann.status)}, not a draft",
                    f"See `/crier status {ann_id}`.",
                )
            resolved = resolve(s, ann.audience)
            approvers = approvers_for(s, resolved.members, ann.author_id)
            if not approvers:
                raise CrierError(
                    f"nobody may approve #{ann_id}: no approver's scope covers {ann.audience}",
                    "Ask an admin to grant an approver role, e.g. "
                    "`crier roles grant EMAIL approver *`. The draft is kept.",
                )
            ann.status = Status.PENDING_APPROVAL.value
            ann.audience_size = resolved.size
            ann.updated_at = now
            enqueue(s, self.domain.config.channels, ann_id, approvers, Purpose.APPROVAL, now)
            audit.record(s, now, "submitted", actor_id=actor.id, announcement_id=ann_id,
                         approvers=len(approvers))
            who = "approver" if len(approvers) == 1 else "approvers"
            done = OutboundMessage(
                title=f"{render.label(ann)} submitted",
                text=f"Sent to {len(approvers)} {who}. You will hear back here.",
                announcement_id=ann_id,
            )
            return Reply(update=done, message=done)

    def approve(self, actor: Person, ann_id: int) -> Reply:
        now = self.domain.clock.now()
        with self.domain.db.session() as s:
            ann, resolved = self._decidable(s, actor, ann_id)
            ann.approved_by_id = actor.id
            ann.updated_at = now
            audit.record(s, now, "approved", actor_id=actor.id, announcement_id=ann_id)
            self._release(s, ann, resolved, now)
            enqueue(s, self.domain.config.channels, ann_id, [ann.author_id], Purpose.OUTCOME,
                    now)
            _close_other_requests(s, ann_id, actor.id, now)
            verdict = f"approved by {actor.name}"
            when = "now" if ann.status == Status.SENDING else render.local(
                ann.send_at, actor.timezone) if not ann.every else f"every {ann.every}"
            reply = Reply(
                update=render.decided(ann, verdict),
                message=OutboundMessage(
                    text=f"Approved #{ann_id}: it goes to {ann.audience_size} people ({when})."
                ),
            )
        self.domain.events.publish(Approved(ann_id))
        return reply

    def reject(self, actor: Person, ann_id: int, reason: str | None = None) -> Reply:
        now = self.domain.clock.now()
        reason = (reason or "").strip() or None
        if reason and len(reason) > MAX_REASON_CHARS:
            raise CrierError(
                f"the reason is {len(reason)} characters; the limit is {MAX_REASON_CHARS}",
                "Shorten it; the author can ask you for details.",
            )
        with self.domain.db.session() as s:
            ann, _ = self._decidable(s, actor, ann_id)
            ann.status = Status.REJECTED.value
            ann.reject_reason = reason
            ann.approved_by_id = actor.id
            ann.updated_at = now
            audit.record(s, now, "rejected", actor_id=actor.id, announcement_id=ann_id,
                         reason=reason)
            enqueue(s, self.domain.config.channels, ann_id, [ann.author_id], Purpose.OUTCOME,
                    now)
            _close_other_requests(s, ann_id, actor.id, now)
            return Reply(
                update=render.decided(ann, f"rejected by {actor.name}"),
                message=OutboundMessage(text=f"Rejected #{ann_id}; the author has been told."),
            )

    def cancel(self, actor: Person, ann_id: int) -> Reply:
        now = self.domain.clock.now()
        with self.domain.db.session() as s:
            ann = queries.announcement(s, ann_id)
            grants = grants_of(s, actor.id)
            if ann.author_id != actor.id and not grants.is_admin:
                raise NotAllowed(
                    f"#{ann_id} is not yours to cancel",
                    "Only its author or an admin can cancel it.",
                )
            if ann.status in (Status.SENDING, Status.SENT) and not ann.every:
                raise CrierError(
                    f"#{ann_id} has already gone out ({status_words(ann.status)})",
                    f"To take it back from people's chats use `/crier recall {ann_id}`.",
                )
            if ann.status in (Status.CANCELLED, Status.REJECTED):
                raise CrierError(f"#{ann_id} is already {status_words(ann.status)}")
            result = s.execute(
                update(Announcement)
                .where(col(Announcement.id) == ann_id, col(Announcement.status) == ann.status)
                .values(status=Status.CANCELLED.value, updated_at=now)
            )
            if changed(result) != 1:
                raise CrierError(f"#{ann_id} changed just now", f"See `/crier status {ann_id}`.")
            s.execute(
                update(Delivery)
                .where(col(Delivery.announcement_id) == ann_id,
                       col(Delivery.status) == DeliveryStatus.PENDING.value)
                .values(status=DeliveryStatus.CANCELLED.value, updated_at=now)
            )
            audit.record(s, now, "cancelled", actor_id=actor.id, announcement_id=ann_id)
            done = OutboundMessage(text=f"{render.label(ann)} is cancelled; nothing will be sent.")
            return Reply(update=done, message=done)

    def _release(self, s: Session, ann: Announcement, resolved: Resolved, now: datetime) -> None:
        """Approved: write the outbox rows now, due at the send time."""
        assert ann.id is not None
        if ann.kind == Kind.REMINDER:
            ann.status = Status.SCHEDULED.value
            audit.record(s, now, "scheduled", announcement_id=ann.id, every=ann.every)
            return
        chosen = recipients(s, ann, resolved.person_ids(s), self.domain.config)
        ids = chosen.ids
        ann.opted_out = chosen.opted_out
        due = send(s, self.domain.config, ann, ids, ann.send_at or now, now)
        first = min(due.values(), default=now)
        ann.status = (Status.SCHEDULED if first > now else Status.SENDING).value
        if ann.status == Status.SENDING:
            ann.sent_at = now
        audit.record(s, now, ann.status, announcement_id=ann.id, recipients=len(ids))

    def _decidable(self, s: Session, actor: Person, ann_id: int) -> tuple[Announcement, Resolved]:
        ann = queries.announcement(s, ann_id)
        if ann.author_id == actor.id:
            raise NotAllowed(
                f"you wrote #{ann_id}, so you cannot approve or reject it",
                "Another approver must decide; nobody approves their own announcement.",
            )
        if ann.status != Status.PENDING_APPROVAL:
            if ann.approved_by_id:
                verdict = "rejected" if ann.status == Status.REJECTED else "approved"
                state = f"already {verdict} by {queries.name(s, ann.approved_by_id)}"
            else:
                state = f"{status_words(ann.status)}, not waiting for approval"
            raise CrierError(f"#{ann_id} is {state}", f"See `/crier status {ann_id}`.")
        resolved = resolve(s, ann.audience)
        grants = grants_of(s, actor.id)
        if not may_approve(grants, resolved.members, ann.author_id):
            raise NotAllowed(*scope_refusal(grants, Role.APPROVER, resolved.members))
        # Claim the decision so two approvers clicking at once cannot both win.
        claimed = s.execute(
            update(Announcement)
            .where(col(Announcement.id) == ann_id,
                   col(Announcement.status) == Status.PENDING_APPROVAL.value)
            .values(status=Status.APPROVED.value)
        )
        if changed(claimed) != 1:
            raise CrierError(f"#{ann_id} was decided just now", f"See `/crier status {ann_id}`.")
        s.refresh(ann)
        return ann, resolved


def _close_other_requests(s: Session, ann_id: int, actor_id: int, now: datetime) -> None:
    """Once decided, the other approvers' requests say so instead of offering buttons."""
    s.execute(
        update(Delivery)
        .where(col(Delivery.announcement_id) == ann_id,
               col(Delivery.purpose) == Purpose.APPROVAL.value,
               col(Delivery.status) == DeliveryStatus.PENDING.value)
        .values(status=DeliveryStatus.CANCELLED.value, updated_at=now,
                error="decided before it was sent")
    )
    s.execute(
        update(Delivery)
        .where(col(Delivery.announcement_id) == ann_id,
               col(Delivery.purpose) == Purpose.APPROVAL.value,
               col(Delivery.status) == DeliveryStatus.DELIVERED.value,
               col(Delivery.person_id) != actor_id)
        .values(status=DeliveryStatus.PENDING.value, action=DeliveryAction.UPDATE.value,
                next_attempt_at=now, updated_at=now)
    )
