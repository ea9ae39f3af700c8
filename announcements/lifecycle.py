"""The announcement lifecycle and everything a person can do to it.

    draft -> pending_approval -> approved -> scheduled -> sending -> sent
                 \\-> rejected          any step before sending -> cancelled

Every public method is one transaction: it checks, writes, records an audit
event and returns the ``Reply`` the acting person sees. Messages to other
people (approval requests, outcomes, the announcement itself) are written to
the outbox in that same transaction and sent by the delivery engine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from announcements import audit, render, views
from announcements.audience import Resolved, resolve
from announcements.clock import Clock, SystemClock
from announcements.delivery import Claimed
from announcements.errors import CrierError, NotAllowed, NotFound, concerning
from announcements.limits import (
    MAX_CATEGORY_CHARS,
    MAX_POLL_OPTION_CHARS,
    MAX_POLL_OPTIONS,
    MAX_POLL_QUESTION_CHARS,
    MAX_REASON_CHARS,
    MAX_TEXT_CHARS,
    MAX_TEXT_REASON,
    MIN_POLL_OPTIONS,
)
from announcements.outbox import Channels, enqueue
from announcements.policy import (
    Grants,
    approvers_for,
    grants_of,
    may_approve,
    may_author,
    uncovered,
)
from announcements.quiet import QuietHours
from announcements.timespec import Every, When, zone
from announcements.types import (
    Action,
    DeliveryAction,
    DeliveryStatus,
    DraftRequest,
    InboundAction,
    Kind,
    OutboundMessage,
    Person,
    Purpose,
    Reply,
    Role,
    Status,
    parse_action,
)
from storage.db import Database
from storage.models import Announcement, Delivery, OptOut, PollOption, Receipt, Vote
from storage.models import Identity as IdentityRow
from storage.models import Person as PersonRow

#: Categories a recipient may opt out of. Announcements themselves are not
#: optional: policy updates must reach everyone.
OPTIONAL_CATEGORIES = {"polls": Kind.POLL, "reminders": Kind.REMINDER}
PRE_SEND = (Status.DRAFT, Status.PENDING_APPROVAL, Status.APPROVED, Status.SCHEDULED)


def to_person(row: PersonRow) -> Person:
    assert row.id is not None
    return Person(
        id=row.id,
        email=row.email,
        name=row.name,
        department=row.department,
        location=row.location,
        timezone=row.timezone,
        title=row.title,
    )


@dataclass
class Crier:
    """The domain service. Adapters call it with a ``Person`` and get a ``Reply``."""

    db: Database
    clock: Clock = SystemClock()  # noqa: RUF009 - stateless
    channels: Channels = Channels()  # noqa: RUF009 - frozen
    quiet: QuietHours | None = QuietHours()  # noqa: RUF009 - frozen
    #: Most nudges one acknowledgement request sends to one person.
    nudge_max: int = 3
    #: Called with the announcement id after an approval is committed (the scheduler
    #: registers reminders, nudges and poll closing there).
    after_approval: Callable[[int], None] | None = None
    #: Button verbs handled outside this class (``approve-edit``), by verb.
    actions: dict[str, Callable[[Person, Action, str | None], Reply]] = field(
        default_factory=dict)

    # -- people ---------------------------------------------------------------

    def person(self, email: str) -> Person | None:
        with self.db.session() as s:
            row = s.execute(
                select(PersonRow).where(PersonRow.email == email.strip().lower())
            ).scalar_one_or_none()
            return to_person(row) if row and row.active else None

    def person_for(self, platform: str, user_id: str) -> Person | None:
        """The directory person behind a platform account, or None if unknown."""
        if platform in self.channels.by_email:
            return self.person(user_id)
        with self.db.session() as s:
            row = s.execute(
                select(PersonRow)
                .join(IdentityRow, IdentityRow.person_id == PersonRow.id)
                .where(IdentityRow.platform == platform, IdentityRow.platform_user_id == user_id)
            ).scalar_one_or_none()
            return to_person(row) if row and row.active else None

    # -- drafting -------------------------------------------------------------

    def draft(self, actor: Person, req: DraftRequest) -> Reply:
        """Check everything, then store a draft and show the author its preview.

        Only authors whose scope covers the whole audience may draft; a request
        that fails any check leaves nothing behind.
        """
        now = self.clock.now()
        with self.db.session() as s:
            grants = grants_of(s, actor.id)
            if not grants.has(Role.AUTHOR):
                raise NotAllowed(
                    "you are not an author, so you cannot draft announcements",
                    "Ask an admin to run `crier roles grant "
                    f"{actor.email} author DEPARTMENT`.",
                )
            _check_text(req)
            with concerning("audience"):
                resolved = resolve(s, req.audience)
                if not may_author(grants, resolved.members):
                    raise NotAllowed(*_scope_refusal(grants, Role.AUTHOR, resolved))
            with concerning("at"):
                send_at = _resolve_when(req.at, now, actor.timezone)
            closes_at = _resolve_when(req.closes, now, actor.timezone)
            if closes_at and closes_at <= (send_at or now):
                raise CrierError(
                    "the poll would close before it opens",
                    "Make `closes:` later than `at:` (or than now), e.g. closes:fri 17:00.",
                )
            every = req.every if isinstance(req.every, Every) else None
            if every is not None:
                _check_fires(every, actor.timezone, now)
            options = _check_poll(req) if req.kind == Kind.POLL else []
            ann = Announcement(
                kind=req.kind.value,
                author_id=actor.id,
                text=req.text.strip(),
                audience=str(resolved.spec),
                audience_size=resolved.size,
                ack=req.ack,
                urgent=req.urgent,
                multi=req.multi,
                anonymous=req.anonymous,
                local_time=req.local_time,
                send_at=send_at,
                closes_at=closes_at,
                every=every.text if every else None,
                nudge_every=req.nudge.text if isinstance(req.nudge, Every) else None,
                status=Status.DRAFT.value,
                created_at=now,
                updated_at=now,
            )
            s.add(ann)
            s.flush()
            assert ann.id is not None
            rows = [PollOption(announcement_id=ann.id, position=i, label=label)
                    for i, label in enumerate(options, start=1)]
            s.add_all(rows)
            audit.record(s, now, "drafted", actor_id=actor.id, announcement_id=ann.id,
                         audience=ann.audience, size=ann.audience_size)
            return Reply(message=render.preview(ann, rows, resolved.breakdown(), actor.timezone))

    # -- button presses ---------------------------------------------------------

    def press(self, actor: Person, action: InboundAction, value: str | None = None) -> Reply:
        """A button press. ``value`` carries a rejection reason where one was typed."""
        parsed = parse_action(action.action)
        if parsed is None:
            raise CrierError(
                f"`{action.action}` is not a button", "Type `inbox` to see your buttons."
            )
        aid = parsed.announcement_id
        if parsed.verb in self.actions:
            return self.actions[parsed.verb](actor, parsed, value)
        if parsed.verb == "ack":
            return self.acknowledge(actor, aid, action.message_ref)
        if parsed.verb == "vote":
            return self.vote(actor, aid, parsed.arg or 0)
        if parsed.verb == "submit":
            return self.submit(actor, aid)
        if parsed.verb == "discard":
            return self.cancel(actor, aid)
        if parsed.verb == "approve":
            return self.approve(actor, aid)
        return self.reject(actor, aid, value)

    def submit(self, actor: Person, ann_id: int) -> Reply:
        """Send a draft to every approver whose scope covers the whole audience."""
        now = self.clock.now()
        with self.db.session() as s:
            ann = self._own(s, actor, ann_id, "submit")
            if ann.status != Status.DRAFT:
                raise CrierError(
                    f"#{ann_id} is {_status_words(ann.status)}, not a draft",
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
            enqueue(s, self.channels, ann_id, approvers, Purpose.APPROVAL, now)
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
        """Four eyes: an approver other than the author, covering the whole audience."""
        now = self.clock.now()
        with self.db.session() as s:
            ann, resolved = self._decidable(s, actor, ann_id)
            ann.approved_by_id = actor.id
            ann.updated_at = now
            audit.record(s, now, "approved", actor_id=actor.id, announcement_id=ann_id)
            self._release(s, ann, resolved, now)
            enqueue(s, self.channels, ann_id, [ann.author_id], Purpose.OUTCOME, now)
            self._close_other_requests(s, ann_id, actor.id, now)
            verdict = f"approved by {actor.name}"
            when = "now" if ann.status == Status.SENDING else render.local(
                ann.send_at, actor.timezone) if not ann.every else f"every {ann.every}"
            reply = Reply(
                update=render.decided(ann, verdict),
                message=OutboundMessage(
                    text=f"Approved #{ann_id}: it goes to {ann.audience_size} people ({when})."
                ),
            )
        if self.after_approval is not None:
            self.after_approval(ann_id)
        return reply

    def reject(self, actor: Person, ann_id: int, reason: str | None = None) -> Reply:
        now = self.clock.now()
        reason = (reason or "").strip() or None
        if reason and len(reason) > MAX_REASON_CHARS:
            raise CrierError(
                f"the reason is {len(reason)} characters; the limit is {MAX_REASON_CHARS}",
                "Shorten it; the author can ask you for details.",
            )
        with self.db.session() as s:
            ann, _ = self._decidable(s, actor, ann_id)
            ann.status = Status.REJECTED.value
            ann.reject_reason = reason
            ann.approved_by_id = actor.id
            ann.updated_at = now
            audit.record(s, now, "rejected", actor_id=actor.id, announcement_id=ann_id,
                         reason=reason)
            enqueue(s, self.channels, ann_id, [ann.author_id], Purpose.OUTCOME, now)
            self._close_other_requests(s, ann_id, actor.id, now)
            return Reply(
                update=render.decided(ann, f"rejected by {actor.name}"),
                message=OutboundMessage(text=f"Rejected #{ann_id}; the author has been told."),
            )

    def cancel(self, actor: Person, ann_id: int) -> Reply:
        """The author (or an admin) may cancel anything that has not started sending."""
        now = self.clock.now()
        with self.db.session() as s:
            ann = self._get(s, ann_id)
            grants = grants_of(s, actor.id)
            if ann.author_id != actor.id and not grants.is_admin:
                raise NotAllowed(
                    f"#{ann_id} is not yours to cancel",
                    "Only its author or an admin can cancel it.",
                )
            if ann.status in (Status.SENDING, Status.SENT) and not ann.every:
                raise CrierError(
                    f"#{ann_id} has already gone out ({_status_words(ann.status)})",
                    f"To take it back from people's chats use `/crier recall {ann_id}`.",
                )
            if ann.status in (Status.CANCELLED, Status.REJECTED):
                raise CrierError(f"#{ann_id} is already {_status_words(ann.status)}")
            result = s.execute(
                update(Announcement)
                .where(Announcement.id == ann_id, Announcement.status == ann.status)
                .values(status=Status.CANCELLED.value, updated_at=now)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise CrierError(f"#{ann_id} changed just now", f"See `/crier status {ann_id}`.")
            s.execute(
                update(Delivery)
                .where(Delivery.announcement_id == ann_id,
                       Delivery.status == DeliveryStatus.PENDING.value)
                .values(status=DeliveryStatus.CANCELLED.value, updated_at=now)
            )
            audit.record(s, now, "cancelled", actor_id=actor.id, announcement_id=ann_id)
            done = OutboundMessage(text=f"{render.label(ann)} is cancelled; nothing will be sent.")
            return Reply(update=done, message=done)

    # -- recipients -------------------------------------------------------------

    def acknowledge(self, actor: Person, ann_id: int, message_ref: str | None = None) -> Reply:
        """One receipt per person; a second click changes nothing. Every copy the person
        got (the announcement and its nudges) then shows it acknowledged."""
        now = self.clock.now()
        with self.db.session() as s:
            ann = self._received(s, actor, ann_id)
            if not ann.ack:
                raise CrierError(f"#{ann_id} does not ask for an acknowledgement")
            existing = s.execute(
                select(Receipt).where(Receipt.announcement_id == ann_id,
                                      Receipt.person_id == actor.id)
            ).scalar_one_or_none()
            at = existing.created_at if existing else now
            if existing is None:
                try:
                    with s.begin_nested():
                        s.add(Receipt(announcement_id=ann_id, person_id=actor.id, created_at=now))
                except IntegrityError:  # a concurrent double click won the race
                    pass
                else:
                    audit.record(s, now, "acknowledged", actor_id=actor.id, announcement_id=ann_id)
                    self._refresh_copies(s, ann_id, actor.id, message_ref, now)
            clicked = s.execute(
                select(Delivery.purpose).where(Delivery.announcement_id == ann_id,
                                               Delivery.person_id == actor.id,
                                               Delivery.message_ref == message_ref)
            ).scalar_one_or_none() if message_ref else None
            updated = render.announcement(ann, [], self._name(s, ann.author_id),
                                          acknowledged_at=render.local(at, actor.timezone),
                                          nudge=clicked == Purpose.NUDGE)
            note = "Already acknowledged" if existing else "Acknowledged"
            return Reply(update=updated, message=OutboundMessage(text=f"✓ {note} #{ann_id}."))

    def _refresh_copies(self, s: Session, ann_id: int, person_id: int, clicked: str | None,
                        now: datetime) -> None:
        """Queue updates of the person's other delivered copies (not the clicked one)."""
        query = (
            update(Delivery)
            .where(Delivery.announcement_id == ann_id, Delivery.person_id == person_id,
                   Delivery.purpose.in_([Purpose.ANNOUNCEMENT.value, Purpose.NUDGE.value]),  # type: ignore[attr-defined]
                   Delivery.status == DeliveryStatus.DELIVERED.value)
            .values(status=DeliveryStatus.PENDING.value, action=DeliveryAction.UPDATE.value,
                    next_attempt_at=now, updated_at=now)
        )
        if clicked:
            query = query.where(Delivery.message_ref != clicked)
        s.execute(query)

    def vote(self, actor: Person, ann_id: int, position: int) -> Reply:
        """A single-choice answer replaces the old one; in a ``multi`` poll a click
        toggles that option."""
        now = self.clock.now()
        with self.db.session() as s:
            ann = self._received(s, actor, ann_id)
            if ann.kind != Kind.POLL:
                raise CrierError(f"#{ann_id} is not a poll")
            options = self._options(s, ann_id)
            if ann.closed_at is not None or (ann.closes_at and ann.closes_at <= now):
                counts = self._counts(s, ann_id)
                return Reply(
                    update=render.announcement(ann, options, self._name(s, ann.author_id),
                                               counts=counts, closed=True),
                    message=OutboundMessage(
                        text=f"Poll #{ann_id} is closed; answers are no longer taken."),
                )
            chosen = next((o for o in options if o.position == position), None)
            if chosen is None:
                raise NotFound(f"poll #{ann_id} has no option {position}")
            mine = s.execute(
                select(Vote).where(Vote.announcement_id == ann_id, Vote.person_id == actor.id)
            ).scalars().all()
            had = any(v.option_id == chosen.id for v in mine)
            if ann.multi:
                if had:
                    s.execute(delete(Vote).where(Vote.option_id == chosen.id,
                                                 Vote.person_id == actor.id))
                else:
                    s.add(Vote(announcement_id=ann_id, option_id=chosen.id, person_id=actor.id,
                               created_at=now))
            elif not had:
                s.execute(delete(Vote).where(Vote.announcement_id == ann_id,
                                             Vote.person_id == actor.id))
                s.add(Vote(announcement_id=ann_id, option_id=chosen.id, person_id=actor.id,
                           created_at=now))
            s.flush()
            audit.record(s, now, "voted", actor_id=actor.id, announcement_id=ann_id)
            counts = self._counts(s, ann_id)
            picked = self._my_choices(s, ann_id, actor.id, options)
            text = (f"Your answer to #{ann_id}: {', '.join(picked)}." if picked
                    else f"You have no answer to #{ann_id} now.")
            return Reply(
                update=render.announcement(ann, options, self._name(s, ann.author_id),
                                           counts=counts),
                message=OutboundMessage(text=text),
            )

    def answer(self, actor: Person, ann_id: int, positions: Iterable[int]) -> Reply:
        """Replace the person's whole answer at once (a native poll reports the full
        choice); no positions retracts it. A single-choice poll takes at most one."""
        now = self.clock.now()
        wanted = sorted(set(positions))
        with self.db.session() as s:
            ann = self._received(s, actor, ann_id)
            if ann.kind != Kind.POLL:
                raise CrierError(f"#{ann_id} is not a poll")
            if ann.closed_at is not None or (ann.closes_at and ann.closes_at <= now):
                raise CrierError(f"poll #{ann_id} is closed; answers are no longer taken")
            if len(wanted) > 1 and not ann.multi:
                raise CrierError(f"poll #{ann_id} takes one answer")
            options = {o.position: o for o in self._options(s, ann_id)}
            if missing := [p for p in wanted if p not in options]:
                raise NotFound(f"poll #{ann_id} has no option {missing[0]}")
            s.execute(delete(Vote).where(Vote.announcement_id == ann_id,
                                         Vote.person_id == actor.id))
            s.add_all(Vote(announcement_id=ann_id, option_id=options[p].id, person_id=actor.id,
                           created_at=now) for p in wanted)
            audit.record(s, now, "voted" if wanted else "retracted", actor_id=actor.id,
                         announcement_id=ann_id)
            picked = [options[p].label for p in wanted]
            return Reply.text(f"Your answer to #{ann_id}: {', '.join(picked)}." if picked
                              else f"You have no answer to #{ann_id} now.")

    def optout(self, actor: Person, category: str, out: bool = True) -> Reply:
        now = self.clock.now()
        cat = category.strip().lower()
        if cat not in OPTIONAL_CATEGORIES or len(cat) > MAX_CATEGORY_CHARS:
            raise CrierError(
                f"`{category}` is not a category you can opt out of",
                f"Optional categories: {', '.join(sorted(OPTIONAL_CATEGORIES))}. "
                "Announcements themselves always reach you.",
            )
        with self.db.session() as s:
            row = s.execute(select(OptOut).where(OptOut.person_id == actor.id,
                                              OptOut.category == cat)).scalar_one_or_none()
            if out and row is None:
                s.add(OptOut(person_id=actor.id, category=cat, created_at=now))
            elif not out and row is not None:
                s.delete(row)
            audit.record(s, now, "opted_out" if out else "opted_in", actor_id=actor.id,
                         category=cat)
        verb = "no longer receive" if out else "receive"
        return Reply.text(f"You will {verb} {cat}. (`/crier {'optin' if out else 'optout'} {cat}` "
                          "undoes this.)")

    # -- read-only answers ---------------------------------------------------------

    def status(self, actor: Person, ann_id: int | None = None) -> Reply:
        with self.db.session() as s:
            return Reply.text(views.status(s, actor, ann_id))

    def listing(self, actor: Person) -> Reply:
        with self.db.session() as s:
            return Reply.text(views.listing(s, actor))

    def whoami(self, actor: Person) -> Reply:
        with self.db.session() as s:
            return Reply.text(views.whoami(s, actor))

    def grants(self, actor: Person) -> Grants:
        with self.db.session() as s:
            return grants_of(s, actor.id)

    # -- the engine's side ------------------------------------------------------

    def messages_for(self, rows: Iterable[Claimed]) -> dict[int, OutboundMessage]:
        """Render what each claimed delivery row should say (absent: nothing to send)."""
        rows = list(rows)
        out: dict[int, OutboundMessage] = {}
        with self.db.session() as s:
            ann_ids = {r.announcement_id for r in rows}
            anns = {a.id: a for a in s.execute(
                select(Announcement).where(Announcement.id.in_(ann_ids))  # type: ignore[union-attr]
            ).scalars()}
            people = {r.person_id for r in rows} | {a.author_id for a in anns.values()} | {
                a.approved_by_id for a in anns.values() if a.approved_by_id}
            persons = {p.id: p for p in s.execute(
                select(PersonRow).where(PersonRow.id.in_(people))  # type: ignore[union-attr]
            ).scalars()}
            receipts: dict[tuple[int, int], datetime] = {}
            updates = [r for r in rows if r.action == DeliveryAction.UPDATE]
            if updates:
                for a_id, p_id, at in s.execute(
                    select(Receipt.announcement_id, Receipt.person_id, Receipt.created_at).where(
                        Receipt.announcement_id.in_({r.announcement_id for r in updates}),  # type: ignore[attr-defined]
                        Receipt.person_id.in_({r.person_id for r in updates}))  # type: ignore[attr-defined]
                ).tuples():
                    receipts[(a_id, p_id)] = at
            cache: dict[tuple[int, str], OutboundMessage] = {}
            for r in rows:
                ann = anns.get(r.announcement_id)
                if ann is None or ann.id is None:
                    continue
                key = (ann.id, r.purpose)
                author = persons[ann.author_id]
                if r.purpose in (Purpose.ANNOUNCEMENT, Purpose.NUDGE):
                    if ann.status == Status.CANCELLED:
                        continue
                    if ann.ack and (r.announcement_id, r.person_id) in receipts:
                        out[r.id] = render.announcement(
                            ann, [], author.name, nudge=r.purpose == Purpose.NUDGE,
                            acknowledged_at=render.local(receipts[(ann.id, r.person_id)],
                                                         persons[r.person_id].timezone))
                        continue
                    if key not in cache:
                        closed = ann.closed_at is not None
                        cache[key] = render.announcement(
                            ann, self._options(s, ann.id), author.name,
                            counts=self._counts(s, ann.id) if closed else None, closed=closed,
                            nudge=r.purpose == Purpose.NUDGE)
                    out[r.id] = cache[key]
                elif r.purpose == Purpose.APPROVAL:
                    if ann.status != Status.PENDING_APPROVAL:
                        if r.action == DeliveryAction.UPDATE:
                            decider = persons.get(ann.approved_by_id or 0)
                            verdict = "approved" if ann.status != Status.REJECTED else "rejected"
                            out[r.id] = render.decided(
                                ann, f"{verdict} by {decider.name if decider else 'an approver'}")
                        continue
                    if key not in cache:
                        cache[key] = render.approval_request(
                            ann, self._options(s, ann.id), author.name,
                            resolve(s, ann.audience).breakdown(),
                            persons[r.person_id].timezone)
                    out[r.id] = cache[key]
                elif r.purpose == Purpose.OUTCOME:
                    approver = persons.get(ann.approved_by_id) if ann.approved_by_id else None
                    out[r.id] = render.outcome(ann, approver.name if approver else "an approver",
                                               author.timezone)
        return out

    def _release(self, s: Session, ann: Announcement, resolved: Resolved, now: datetime) -> None:
        """Approved: write the outbox rows now, due at the send time.

        The audience is frozen at approval: the approver approved these people.
        """
        assert ann.id is not None
        if ann.kind == Kind.REMINDER:
            ann.status = Status.SCHEDULED.value
            audit.record(s, now, "scheduled", announcement_id=ann.id, every=ann.every)
            return
        ids = resolved.person_ids(s)
        if ann.kind == Kind.POLL and (opted := self._opted_out(s, "polls")):
            ids = [i for i in ids if i not in opted]
        due = self.due_times(s, ann, ids, ann.send_at or now)
        enqueue(s, self.channels, ann.id, ids, Purpose.ANNOUNCEMENT, now, not_before=due)
        first = min(due.values(), default=now)
        ann.status = (Status.SCHEDULED if first > now else Status.SENDING).value
        if ann.status == Status.SENDING:
            ann.sent_at = now
        audit.record(s, now, ann.status, announcement_id=ann.id, recipients=len(ids))

    def due_times(
        self, s: Session, ann: Announcement, ids: list[int], base: datetime
    ) -> dict[int, datetime]:
        """When each recipient should get it: at ``base`` (in their own zone for
        ``local`` sends), held to their working hours unless urgent."""
        local = ann.local_time and ann.send_at is not None
        quiet = None if ann.urgent else self.quiet
        if not local and quiet is None:
            return dict.fromkeys(ids, base)
        zones = dict(s.execute(select(PersonRow.id, PersonRow.timezone)).tuples().all())
        wall = None
        if local:
            author = s.get(PersonRow, ann.author_id)
            wall = base.astimezone(zone(author.timezone if author else "UTC")).replace(tzinfo=None)
        cache: dict[str, datetime] = {}
        due: dict[int, datetime] = {}
        for pid in ids:
            tz = zones.get(pid) or "UTC"
            if tz not in cache:
                when = base if wall is None else wall.replace(tzinfo=zone(tz)).astimezone(
                    base.tzinfo)
                cache[tz] = quiet.next_open(when, tz) if quiet else when
            due[pid] = cache[tz]
        return due

    def _opted_out(self, s: Session, category: str) -> set[int]:
        return set(s.execute(select(OptOut.person_id).where(OptOut.category == category)).scalars())

    def _close_other_requests(self, s: Session, ann_id: int, actor_id: int, now: datetime) -> None:
        """Once decided, the other approvers' requests say so instead of offering buttons."""
        s.execute(
            update(Delivery)
            .where(Delivery.announcement_id == ann_id,
                   Delivery.purpose == Purpose.APPROVAL.value,
                   Delivery.status == DeliveryStatus.PENDING.value)
            .values(status=DeliveryStatus.CANCELLED.value, updated_at=now,
                    error="decided before it was sent")
        )
        s.execute(
            update(Delivery)
            .where(Delivery.announcement_id == ann_id,
                   Delivery.purpose == Purpose.APPROVAL.value,
                   Delivery.status == DeliveryStatus.DELIVERED.value,
                   Delivery.person_id != actor_id)
            .values(status=DeliveryStatus.PENDING.value, action=DeliveryAction.UPDATE.value,
                    next_attempt_at=now, updated_at=now)
        )

    # -- helpers ------------------------------------------------------------------

    def _get(self, s: Session, ann_id: int) -> Announcement:
        ann = s.get(Announcement, ann_id)
        if ann is None:
            raise NotFound(f"there is no announcement #{ann_id}", "See `/crier list`.")
        return ann

    def _own(self, s: Session, actor: Person, ann_id: int, verb: str) -> Announcement:
        ann = self._get(s, ann_id)
        if ann.author_id != actor.id:
            raise NotAllowed(f"#{ann_id} is not yours to {verb}", "Only its author can do that.")
        return ann

    def _decidable(self, s: Session, actor: Person, ann_id: int) -> tuple[Announcement, Resolved]:
        ann = self._get(s, ann_id)
        if ann.author_id == actor.id:
            raise NotAllowed(
                f"you wrote #{ann_id}, so you cannot approve or reject it",
                "Another approver must decide; nobody approves their own announcement.",
            )
        if ann.status != Status.PENDING_APPROVAL:
            if ann.approved_by_id:
                verdict = "rejected" if ann.status == Status.REJECTED else "approved"
                state = f"already {verdict} by {self._name(s, ann.approved_by_id)}"
            else:
                state = f"{_status_words(ann.status)}, not waiting for approval"
            raise CrierError(f"#{ann_id} is {state}", f"See `/crier status {ann_id}`.")
        resolved = resolve(s, ann.audience)
        grants = grants_of(s, actor.id)
        if not may_approve(grants, resolved.members, ann.author_id):
            raise NotAllowed(*_scope_refusal(grants, Role.APPROVER, resolved))
        # Claim the decision so two approvers clicking at once cannot both win.
        claimed = s.execute(
            update(Announcement)
            .where(Announcement.id == ann_id,
                   Announcement.status == Status.PENDING_APPROVAL.value)
            .values(status=Status.APPROVED.value)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise CrierError(f"#{ann_id} was decided just now", f"See `/crier status {ann_id}`.")
        s.refresh(ann)
        return ann, resolved

    def _received(self, s: Session, actor: Person, ann_id: int) -> Announcement:
        """Only people it was sent to may acknowledge or answer it."""
        ann = s.get(Announcement, ann_id)
        got = s.execute(
            select(Delivery.id).where(
                Delivery.announcement_id == ann_id,
                Delivery.person_id == actor.id,
                Delivery.purpose == Purpose.ANNOUNCEMENT.value,
                # Delivered, or delivered and now being updated (an edit, a closed poll).
                or_(Delivery.status == DeliveryStatus.DELIVERED.value,
                    Delivery.action == DeliveryAction.UPDATE.value),
            ).limit(1)
        ).first()
        if ann is None or got is None:
            raise NotFound(
                f"#{ann_id} was not sent to you",
                "You can only answer announcements in your own inbox.",
            )
        return ann

    def _options(self, s: Session, ann_id: int) -> list[PollOption]:
        return list(s.execute(select(PollOption).where(PollOption.announcement_id == ann_id)
                           .order_by(PollOption.position)).scalars())

    def _counts(self, s: Session, ann_id: int) -> dict[int, int]:
        rows = s.execute(
            select(PollOption.position, func.count(Vote.id))
            .join(Vote, Vote.option_id == PollOption.id)
            .where(PollOption.announcement_id == ann_id)
            .group_by(PollOption.position)
        ).tuples().all()
        return {pos: n for pos, n in rows}

    def _my_choices(
        self, s: Session, ann_id: int, pid: int, options: list[PollOption]
    ) -> list[str]:
        ids = set(s.execute(select(Vote.option_id).where(Vote.announcement_id == ann_id,
                                                      Vote.person_id == pid)).scalars())
        return [o.label for o in options if o.id in ids]

    def _name(self, s: Session, person_id: int | None) -> str:
        row = s.get(PersonRow, person_id) if person_id else None
        return row.name if row else "someone"


# -- checks that need no database ---------------------------------------------


def _check_text(req: DraftRequest) -> None:
    text = req.text.strip()
    if not text:
        raise CrierError("the message is empty", "Write the text after the options.")
    if len(text) > MAX_TEXT_CHARS:
        raise CrierError(
            f"the text is {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,} "
            f"({MAX_TEXT_REASON})",
            "Shorten it, or link to a document with the details.",
        )


def _check_poll(req: DraftRequest) -> list[str]:
    question = req.text.strip()
    if len(question) > MAX_POLL_QUESTION_CHARS:
        raise CrierError(
            f"the question is {len(question)} characters; polls allow {MAX_POLL_QUESTION_CHARS} "
            "(Telegram's limit for poll questions)",
            "Shorten the question; put details in a separate announcement.",
        )
    options = [o for o in req.options if o]
    if len(options) < MIN_POLL_OPTIONS:
        raise CrierError(
            f"a poll needs at least {MIN_POLL_OPTIONS} options; this one has {len(options)}",
            'Quote each option: /poll "Lunch?" "Pizza" "Sushi"',
        )
    if len(options) > MAX_POLL_OPTIONS:
        raise CrierError(
            f"a poll can have at most {MAX_POLL_OPTIONS} options (Telegram's limit); "
            f"this one has {len(options)}",
            "Merge or drop some options.",
        )
    for o in options:
        if len(o) > MAX_POLL_OPTION_CHARS:
            raise CrierError(
                f"the option `{o[:30]}…` is {len(o)} characters; options allow "
                f"{MAX_POLL_OPTION_CHARS} (Slack's limit for button labels)",
                "Shorten the option.",
            )
    dupes = [o for o, n in Counter(o.lower() for o in options).items() if n > 1]
    if dupes:
        raise CrierError(f"the option `{dupes[0]}` is given twice", "Give each option once.")
    return options


def _resolve_when(when: object | None, now: datetime, tz: str) -> datetime | None:
    if when is None:
        return None
    assert isinstance(when, When)
    return when.resolve(now, tz)


def _check_fires(every: Every, tz: str, now: datetime) -> None:
    if every.cron is None:
        return
    from announcements.schedules import next_fire

    if next_fire(every, tz, now) is None:
        raise CrierError(
            f"the schedule `{every.text}` never fires",
            "Check the day and month fields, e.g. `0 9 * * 1` is Mondays at 09:00.",
        )


def _scope_refusal(grants: Grants, role: Role, resolved: Resolved) -> tuple[str, str]:
    outside: Counter[str] = Counter()
    for m in uncovered(grants, role, resolved.members):
        outside[m.department] += m.count
    shown = ", ".join(f"{d} ({n})" for d, n in outside.most_common(4))
    scopes = ", ".join(sorted(grants.scopes(role))) or "nothing"
    return (
        f"your {role} role covers {scopes}, but this audience also reaches {shown}",
        "Narrow `to:` to your scope, or ask an admin to widen your role.",
    )


def _status_words(status: str) -> str:
    return status.replace("_", " ")
