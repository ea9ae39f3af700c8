"""The words of the domain, with no platform in them.

Adapters translate platform requests into ``InboundAction`` and commands, and
render ``OutboundMessage`` into Block Kit, Telegram HTML, Adaptive Cards or
console text. Button actions are short strings (``ack:12``, ``vote:12:3``) so
they fit every platform's callback payload (Telegram allows 64 bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, TypedDict, Unpack

from announcements.limits import MAX_ID
from announcements.timespec import Every, When

if TYPE_CHECKING:
    from announcements.report_view import ReportView


class Kind(StrEnum):
    MESSAGE = "message"
    POLL = "poll"
    REMINDER = "reminder"


class Status(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    RECALLED = "recalled"  # taken back from people's chats after sending


#: Statuses from which nothing more will be sent.
FINAL_STATUSES = frozenset({Status.SENT, Status.REJECTED, Status.CANCELLED, Status.RECALLED})


class Role(StrEnum):
    AUTHOR = "author"
    APPROVER = "approver"
    ADMIN = "admin"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    CANCELLED = "cancelled"
    RECALLED = "recalled"


class DeliveryAction(StrEnum):
    SEND = "send"
    UPDATE = "update"
    DELETE = "delete"


class Purpose(StrEnum):
    """Why a delivery row exists; every message to a person goes through the outbox."""

    ANNOUNCEMENT = "announcement"
    APPROVAL = "approval"  # an approval request to an approver
    OUTCOME = "outcome"  # approved / rejected notice to the author
    NUDGE = "nudge"
    PROGRESS = "progress"  # the author's live status message while it sends
    EDIT_REQUEST = "edit_request"  # an edit of a sent announcement, to an approver
    EDIT_OUTCOME = "edit_outcome"  # the edit was approved / rejected, to its editor


#: Purposes sent in bulk (one row per recipient); others are small and go first.
BULK_PURPOSES = frozenset({Purpose.ANNOUNCEMENT, Purpose.NUDGE})


@dataclass(frozen=True)
class Person:
    id: int
    email: str
    name: str
    department: str
    location: str | None = None
    timezone: str = "UTC"
    title: str | None = None


@dataclass(frozen=True)
class Button:
    action: str
    label: str
    style: str | None = None  # "primary" | "danger" | None


@dataclass(frozen=True)
class PollChoice:
    action: str
    label: str
    votes: int | None = None  # None when results are not shown


@dataclass(frozen=True)
class PollView:
    question: str
    choices: tuple[PollChoice, ...]
    multi: bool = False
    anonymous: bool = False
    closed: bool = False


@dataclass(frozen=True)
class OutboundMessage:
    """A platform-neutral message. ``text`` is plain text with ``*bold*`` at most."""

    text: str
    title: str | None = None
    buttons: tuple[Button, ...] = ()
    poll: PollView | None = None
    footer: str | None = None
    urgent: bool = False
    announcement_id: int | None = None
    purpose: str | None = None
    #: A report to render natively (sections, figures, chart); ``text`` is its fallback.
    report: ReportView | None = None

    @property
    def fallback(self) -> str:
        """The one line a notification shows: the title or the first line of text."""
        first = (self.title or self.text).strip().splitlines()
        return first[0][:150] if first else ""


class MessageOptions(TypedDict, total=False):
    """The ``OutboundMessage`` fields besides ``text``, for ``Reply.text``."""

    title: str | None
    buttons: tuple[Button, ...]
    poll: PollView | None
    footer: str | None
    urgent: bool
    announcement_id: int | None
    purpose: str | None


@dataclass(frozen=True)
class InboundAction:
    """A button press: who pressed which action on which delivered message."""

    email: str
    action: str
    platform: str = "console"
    message_ref: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a request was not done: a ``code`` adapters may act on, the words for the
    person, what to do instead, and the form field it concerns (a ``DraftRequest``
    field name such as ``audience`` or ``at``) where there is one."""

    code: str
    message: str
    hint: str | None = None
    field: str | None = None

    @property
    def words(self) -> str:
        return self.message + (f"\n{self.hint}" if self.hint else "")


@dataclass
class Reply:
    """What the person who spoke or clicked sees.

    ``message`` is shown only to them (ephemeral where the platform allows);
    ``update`` replaces the message whose button was pressed. ``error`` is set
    when the request was refused or failed; ``message`` then says so in words.
    ``form`` names a form a platform with forms opens instead of showing
    ``message`` (``"draft"``: the drafting form, for a bare ``/announce``).
    """

    message: OutboundMessage | None = None
    update: OutboundMessage | None = None
    notices: list[str] = field(default_factory=list)
    error: Refusal | None = None
    form: str | None = None

    @classmethod
    def text(cls, text: str, **kw: Unpack[MessageOptions]) -> Reply:
        return cls(message=OutboundMessage(text=text, **kw))

    @classmethod
    def refused(cls, refusal: Refusal) -> Reply:
        return cls(message=OutboundMessage(text=f"✗ {refusal.words}"), error=refusal)


class Verb(StrEnum):
    """What a button does; the first part of its action id."""

    ACK = "ack"
    VOTE = "vote"
    SUBMIT = "submit"
    DISCARD = "discard"
    APPROVE = "approve"
    REJECT = "reject"
    APPROVE_EDIT = "approve-edit"
    REJECT_EDIT = "reject-edit"


@dataclass(frozen=True)
class Action:
    """A button's action id, built and read only here: ``verb:announcement[:arg]``
    (``ack:12``, ``vote:12:3``), short enough for Telegram's 64-byte callback data.
    Every number is an id in 1..``MAX_ID``."""

    verb: Verb
    announcement_id: int
    arg: int | None = None

    @property
    def id(self) -> str:
        base = f"{self.verb.value}:{self.announcement_id}"
        return base if self.arg is None else f"{base}:{self.arg}"

    def __str__(self) -> str:
        return self.id

    @classmethod
    def of(cls, verb: Verb, announcement_id: int | None, arg: int | None = None) -> str:
        """The id of a button on a stored announcement (a row's id is set once saved)."""
        if announcement_id is None:
            raise ValueError("an announcement gets buttons only once it is stored")
        return cls(verb, announcement_id, arg).id

    @classmethod
    def parse(cls, raw: str) -> Action | None:
        """``ack:12`` -> Action(ACK, 12); None when it is not one of ours."""
        parts = raw.strip().split(":")
        if len(parts) not in (2, 3) or parts[0] not in ACTION_VERBS:
            return None
        if not all(p.isascii() and p.isdigit() and len(p) <= 19 for p in parts[1:]):
            return None
        numbers = [int(p) for p in parts[1:]]
        if not all(1 <= n <= MAX_ID for n in numbers):
            return None
        return cls(Verb(parts[0]), numbers[0], numbers[1] if len(numbers) == 2 else None)


ACTION_VERBS = frozenset(v.value for v in Verb)


def parse_action(raw: str) -> Action | None:
    """``Action.parse``: None for anything that is not one of Crier's button ids."""
    return Action.parse(raw)


@dataclass(frozen=True)
class DraftRequest:
    """What an author asked for, as the grammar (or a drafting form) read it.

    Times are kept as parsed phrases; the domain resolves them in the author's
    time zone, because only it knows who the author is.
    """

    kind: Kind
    text: str
    audience: str = "all"
    at: When | None = None
    closes: When | None = None
    every: Every | None = None
    nudge: Every | None = None
    ack: bool = False
    urgent: bool = False
    local_time: bool = False
    multi: bool = False
    anonymous: bool = False
    options: tuple[str, ...] = ()
    #: ``category:NAME``; None is the kind's default (``announcements.categories``).
    category: str | None = None
    #: ``escalate:DURATION``: unacknowledged after this, also sent on the next platform.
    escalate: timedelta | None = None
