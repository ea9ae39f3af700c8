"""The inbound pipeline, written once for every platform.

An adapter verifies a request (signature, secret) and translates it into an
``Inbound`` plus a typed line, a button id, a form's ``DraftRequest`` or a poll
answer; the pipeline then deduplicates, identifies the person once, parses
once, dispatches to the ``Crier`` facade and returns a ``Reply`` that the
adapter presents (``bot.inbound.present``). The pipeline returns None only for
a duplicate (a retried event or a double click whose first arrival took
effect): there is nothing new to show.

At-least-once with one effect: an event's keys are recorded in the transaction
of its effect (``storage.events``). A handler that fails records nothing and
the person is told "that did not go through, try again"; the platform's retry
or their second try then takes effect once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError

from announcements.errors import CrierError
from announcements.lifecycle import Crier
from announcements.types import (
    DraftRequest,
    InboundAction,
    OutboundMessage,
    Person,
    Refusal,
    Reply,
)
from bot import grammar
from bot.inbound.commands import Commands, Extension
from bot.inbound.text import normalized, unstorable
from storage import events
from storage.events import Pending

log = logging.getLogger("crier.inbound")
T = TypeVar("T")

NOT_IN_DIRECTORY = (
    "Sorry, you are not in Crier's directory, so I cannot act for you. "
    "Ask your comms team or IT to add you."
)
#: Refusal codes the pipeline itself gives (the domain's are on ``CrierError``).
NOT_KNOWN, TRY_AGAIN, BAD_TEXT = "not_in_directory", "try_again", "control_character"
#: A second press of the same button by the same person on the same message within
#: this many seconds is a double click: it has no second effect.
CLICK_WINDOW = 1.0


@dataclass(frozen=True)
class Inbound:
    """Who spoke, on which platform, where; ``keys`` name the event for deduplication
    (empty: the platform never delivers it twice)."""

    platform: str
    user: str
    keys: tuple[str, ...] = ()
    channel: str | None = None
    message_ref: str | None = None


def click_keys(user: str, place: str, action: str, stamp: float) -> tuple[str, ...]:
    """Keys that make two presses less than ``CLICK_WINDOW`` apart one event: each
    press claims its window and the next, so any two such presses share one."""
    bucket = int(stamp // CLICK_WINDOW)
    return tuple(f"click:{user}:{place}:{action}@{b}" for b in (bucket, bucket + 1))


def refusal(exc: CrierError) -> Reply:
    return Reply.refused(Refusal(exc.code, exc.message, exc.hint, exc.field))


def try_again() -> Reply:
    return Reply.refused(Refusal(TRY_AGAIN, "That did not go through, try again.",
                                 "Nothing was changed; if it keeps failing, tell your admin."))




@dataclass
class Pipeline:
    crier: Crier
    #: Called after anything that may have written to the outbox (wakes the workers).
    on_outbox: Callable[[], None] | None = None
    #: ``/crier`` subcommands added by features (report, recall, edit).
    extensions: dict[str, Extension] | None = None
    #: Per platform, a way to link an unknown account on first contact (Slack: by email).
    linkers: dict[str, Callable[[str], Awaitable[bool]]] = field(default_factory=dict)
    #: Per platform, what an account Crier does not know is told (default: not in directory).
    strangers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.commands = Commands(self.crier, dict(self.extensions or {}))

    # -- the database, off the event loop -----------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any, pending: Pending | None = None) -> T:
        """Every database call of the pipeline and the adapters goes through here: on the
        database executor at interactive priority (a click goes before the engine's batch
        writes), in a worker thread that sees ``pending`` (the executor copies the context)."""
        token = events.PENDING.set(pending)
        try:
            return await self.crier.db.executor.run(fn, *args)
        finally:
            events.PENDING.reset(token)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """A database call an adapter needs (a lookup), off the event loop."""
        return await self._run(fn, *args)

    # -- the steps ------------------------------------------------------------------

    async def identify(self, platform: str, user: str) -> Person | None:
        """The directory person behind a platform account; linked on first contact where
        the platform has a linker."""
        person = await self._run(self.crier.person_for, platform, user)
        linker = self.linkers.get(platform)
        if person is None and linker is not None and await linker(user):
            person = await self._run(self.crier.person_for, platform, user)
        return person

    async def text(self, inbound: Inbound, line: str) -> Reply | None:
        """A command typed by ``inbound.user``."""
        line = normalized(line)
        bad = unstorable(line, "The command")
        context = {"platform": inbound.platform, "channel": inbound.channel}

        def work(person: Person) -> Reply:
            if bad is not None:
                raise bad
            return self.commands.run(person, grammar.parse(line), context)

        return await self._handle(inbound, work)

    async def press(self, inbound: Inbound, action: str, value: str | None = None
                    ) -> Reply | None:
        """A button pressed by ``inbound.user``; ``value`` is a typed reason (reject)."""
        value = normalized(value) if value is not None else None
        bad = unstorable(value, "The reason", "reason") if value is not None else None

        def work(person: Person) -> Reply:
            if bad is not None:
                raise bad
            pressed = InboundAction(person.email, action, inbound.platform, inbound.message_ref)
            return self.crier.press(person, pressed, value)

        return await self._handle(inbound, work)

    async def draft(self, inbound: Inbound, request: DraftRequest) -> Reply | None:
        """A draft from a form (Slack modal, Teams card) rather than typed text."""
        def work(person: Person) -> Reply:
            for name, text in (("text", request.text), ("audience", request.audience),
                               *(("options", o) for o in request.options)):
                bad = unstorable(text, f"The {name}", name)
                if bad is not None:
                    raise bad
            return self.crier.draft(person, request)

        return await self._handle(inbound, work)

    async def answer(self, inbound: Inbound, ann_id: int, positions: Iterable[int]
                     ) -> Reply | None:
        """A native poll's whole current answer (Telegram)."""
        chosen = list(positions)
        return await self._handle(inbound,
                                  lambda person: self.crier.answer(person, ann_id, chosen))

    async def effect(self, inbound: Inbound, fn: Callable[..., T], *args: Any
                     ) -> tuple[T] | None:
        """An adapter's own write for an event that needs no person (account linking):
        deduplicated and recorded like the rest. None for a duplicate; raises on failure."""
        pending = self._pending(inbound)
        if pending is not None and await self._run(events.seen, self.crier.db, pending):
            return None
        try:
            result = await self._run(fn, *args, pending=pending)
        except IntegrityError:
            if pending is not None and await self._run(events.seen, self.crier.db, pending):
                return None
            raise
        if pending is not None and not await self._run(events.record, self.crier.db, pending):
            return None
        return (result,)

    # -- one event ------------------------------------------------------------------

    def _pending(self, inbound: Inbound) -> Pending | None:
        if not inbound.keys:
            return None
        return Pending(inbound.platform, inbound.keys, self.crier.clock.now())

    async def _handle(self, inbound: Inbound, work: Callable[[Person], Reply]) -> Reply | None:
        pending = self._pending(inbound)
        db = self.crier.db
        try:
            if pending is not None and await self._run(events.seen, db, pending):
                log.info("%s event %s was handled before", inbound.platform, pending.keys[0])
                return None
            person = await self.identify(inbound.platform, inbound.user)
            reply: Reply | None
            if person is None:
                words = self.strangers.get(inbound.platform, NOT_IN_DIRECTORY)
                reply = Reply(message=OutboundMessage(text=words),
                              error=Refusal(NOT_KNOWN, words))
            else:
                reply = await self._decide(work, person, pending)
            if reply is None:
                return None
            # A reply without an effect (a read-only command, a refusal) is recorded now,
            # so a retry of the event is not answered twice.
            if pending is not None and not await self._run(events.record, db, pending):
                return None  # a concurrent copy of this event answered
            return reply
        except Exception as exc:  # noqa: BLE001 - the person hears back whatever broke
            trouble = self._database_trouble(exc)
            if trouble is not None:  # down, locked or read-only: one line, no traceback
                log.error("%s request from %s failed: database: %s", inbound.platform,
                          inbound.user, trouble)
            else:
                log.exception("%s request from %s failed", inbound.platform, inbound.user)
            return try_again()

    def _database_trouble(self, exc: Exception) -> str | None:
        """The first line of a database's operational error (SQLAlchemy's or the driver's)."""
        dbapi = self.crier.db.engine.dialect.loaded_dbapi
        if isinstance(exc, OperationalError):
            exc = exc.orig if isinstance(exc.orig, Exception) else exc
        elif not isinstance(exc, dbapi.OperationalError):
            return None
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

    async def _decide(self, work: Callable[[Person], Reply], person: Person,
                      pending: Pending | None) -> Reply | None:
        """Run ``work``; a write that collides with a concurrent one (a unique row another
        request just committed) is run once more, and then sees that row."""
        try:
            try:
                return await self._run(work, person, pending=pending)
            except IntegrityError:
                if pending is not None and await self._run(events.seen, self.crier.db, pending):
                    return None  # a concurrent copy took effect; this one rolled back
            return await self._run(work, person, pending=pending)
        except CrierError as exc:
            return refusal(exc)
        finally:
            if self.on_outbox is not None:
                self.on_outbox()
