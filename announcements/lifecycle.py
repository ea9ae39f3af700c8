"""The ``Crier`` facade: every action a person takes, by name.

Adapters and the inbound pipeline call only this class. It holds no rules of
its own: each method hands over to the room where that rule lives.

    people.py       who is acting
    drafting.py     a request becomes a draft with a preview (or is refused)
    approval.py     submit, approve, reject, cancel (four eyes)
    responses.py    acknowledge, vote, answer
    preferences.py  opting out of optional categories, /crier preferences
    views.py        status, list, whoami
    delivery/corrections.py  recall and edit after sending

Every method is one transaction: it checks, writes (outbox rows included),
records an audit event and returns the ``Reply`` the acting person sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from announcements import views
from announcements.approval import Approval
from announcements.clock import Clock
from announcements.delivery.corrections import Corrections
from announcements.delivery.fanout import Channels
from announcements.domain import Domain
from announcements.drafting import Drafting
from announcements.errors import CrierError
from announcements.people import People, to_person
from announcements.policy import Grants, grants_of
from announcements.preferences import Preferences
from announcements.responses import Responses
from announcements.types import Action, DraftRequest, InboundAction, Person, Reply, parse_action
from storage.db import Database

__all__ = ["Crier", "to_person"]

#: A button's handler: the person, the parsed button, the clicked message, a typed value.
ButtonHandler = Callable[[Person, Action, InboundAction, str | None], Reply]


class Crier:
    """The domain service. Adapters call it with a ``Person`` and get a ``Reply``."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self.people = People(domain)
        self.drafting = Drafting(domain)
        self.approval = Approval(domain)
        self.responses = Responses(domain)
        self.preferences = Preferences(domain)
        self.corrections = Corrections(domain)
        #: Every button verb and what it does.
        self.buttons: dict[str, ButtonHandler] = {
            "ack": lambda p, a, i, v: self.acknowledge(p, a.announcement_id, i.message_ref),
            "vote": lambda p, a, i, v: self.vote(p, a.announcement_id, a.arg or 0),
            "submit": lambda p, a, i, v: self.submit(p, a.announcement_id),
            "discard": lambda p, a, i, v: self.cancel(p, a.announcement_id),
            "approve": lambda p, a, i, v: self.approve(p, a.announcement_id),
            "reject": lambda p, a, i, v: self.reject(p, a.announcement_id, v),
            "approve-edit": lambda p, a, i, v: self.corrections.approve_edit(p, a, v),
            "reject-edit": lambda p, a, i, v: self.corrections.reject_edit(p, a, v),
        }

    @property
    def db(self) -> Database:
        return self.domain.db

    @property
    def clock(self) -> Clock:
        return self.domain.clock

    @property
    def channels(self) -> Channels:
        return self.domain.config.channels

    # -- people -------------------------------------------------------------------

    def person(self, email: str) -> Person | None:
        return self.people.person(email)

    def person_for(self, platform: str, user_id: str) -> Person | None:
        return self.people.person_for(platform, user_id)

    # -- authors and approvers ----------------------------------------------------------

    def draft(self, actor: Person, req: DraftRequest) -> Reply:
        return self.drafting.draft(actor, req)

    def submit(self, actor: Person, ann_id: int) -> Reply:
        return self.approval.submit(actor, ann_id)

    def approve(self, actor: Person, ann_id: int) -> Reply:
        return self.approval.approve(actor, ann_id)

    def reject(self, actor: Person, ann_id: int, reason: str | None = None) -> Reply:
        return self.approval.reject(actor, ann_id, reason)

    def cancel(self, actor: Person, ann_id: int) -> Reply:
        return self.approval.cancel(actor, ann_id)

    # -- recipients ---------------------------------------------------------------------

    def press(self, actor: Person, action: InboundAction, value: str | None = None) -> Reply:
        """A button press. ``value`` carries a rejection reason where one was typed."""
        parsed = parse_action(action.action)
        handler = self.buttons.get(parsed.verb) if parsed else None
        if parsed is None or handler is None:
            raise CrierError(
                f"`{action.action}` is not a button", "Type `inbox` to see your buttons."
            )
        return handler(actor, parsed, action, value)

    def acknowledge(self, actor: Person, ann_id: int, message_ref: str | None = None) -> Reply:
        return self.responses.acknowledge(actor, ann_id, message_ref)

    def vote(self, actor: Person, ann_id: int, position: int) -> Reply:
        return self.responses.vote(actor, ann_id, position)

    def answer(self, actor: Person, ann_id: int, positions: Iterable[int]) -> Reply:
        return self.responses.answer(actor, ann_id, positions)

    def optout(self, actor: Person, category: str, out: bool = True) -> Reply:
        return self.preferences.optout(actor, category, out)

    # -- read-only answers --------------------------------------------------------------

    def status(self, actor: Person, ann_id: int | None = None) -> Reply:
        with self.db.session() as s:
            return Reply.text(views.status(s, actor, ann_id))

    def listing(self, actor: Person) -> Reply:
        with self.db.session() as s:
            return Reply.text(views.listing(s, actor))

    def whoami(self, actor: Person) -> Reply:
        with self.db.session() as s:
            return Reply.text(views.whoami(s, actor, self.clock.now()))

    def grants(self, actor: Person) -> Grants:
        with self.db.session() as s:
            return grants_of(s, actor.id)
