"""From a platform's words to the domain and back.

Every adapter calls ``Router.text`` for a typed command and ``Router.action``
for a button press, with the platform's user id. The router finds the person,
parses with the shared grammar, calls the domain off the event loop, and turns
refusals into a message that says what to type instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from announcements.errors import CrierError
from announcements.lifecycle import Crier
from announcements.types import DraftRequest, InboundAction, Person, Reply, Role
from bot import grammar

log = logging.getLogger("crier.router")

Extension = Callable[[Person, grammar.CrierCommand, dict[str, Any]], Reply]

NOT_IN_DIRECTORY = (
    "Sorry, you are not in Crier's directory, so I cannot act for you. "
    "Ask your comms team or IT to add you."
)


def error_text(exc: CrierError) -> str:
    return f"✗ {exc.message}" + (f"\n{exc.hint}" if exc.hint else "")


@dataclass
class Router:
    crier: Crier
    #: Called after anything that may have written to the outbox (wakes the workers).
    on_outbox: Callable[[], None] | None = None
    #: Handlers for `/crier` subcommands added by later features (report, recall, ...).
    #: ``/crier`` subcommands added by features (report, recall, edit); each gets the
    #: person, the parsed command and the context (platform, channel).
    extensions: dict[str, Extension] | None = None

    async def identify(self, platform: str, user_id: str) -> Person | None:
        return await self.crier.db.executor.run(self.crier.person_for, platform, user_id)

    async def text(self, platform: str, user_id: str, line: str, **context: Any) -> Reply:
        """A command typed by ``user_id`` on ``platform``."""
        person = await self.identify(platform, user_id)
        if person is None:
            return Reply.text(NOT_IN_DIRECTORY)
        context.setdefault("platform", platform)
        try:
            command = grammar.parse(line)
            return await self.crier.db.executor.run(self._dispatch, person, command, context)
        except CrierError as exc:
            return Reply.text(error_text(exc))
        finally:
            self._poke()

    async def draft(self, platform: str, user_id: str, request: DraftRequest) -> Reply:
        """A draft from a form (Slack modal, Teams card) rather than typed text."""
        person = await self.identify(platform, user_id)
        if person is None:
            return Reply.text(NOT_IN_DIRECTORY)
        try:
            return await self.crier.db.executor.run(self.crier.draft, person, request)
        except CrierError as exc:
            return Reply.text(error_text(exc))

    async def action(
        self,
        platform: str,
        user_id: str,
        action: str,
        message_ref: str | None = None,
        value: str | None = None,
    ) -> Reply:
        """A button pressed by ``user_id``. ``value`` is a typed reason (reject)."""
        person = await self.identify(platform, user_id)
        if person is None:
            return Reply.text(NOT_IN_DIRECTORY)
        inbound = InboundAction(person.email, action, platform, message_ref)
        try:
            return await self.crier.db.executor.run(self.crier.press, person, inbound, value)
        except CrierError as exc:
            return Reply.text(error_text(exc))
        finally:
            self._poke()

    def _poke(self) -> None:
        if self.on_outbox is not None:
            self.on_outbox()

    def _dispatch(self, person: Person, command: grammar.Command, context: dict[str, Any]) -> Reply:
        if isinstance(command, DraftRequest):
            return self.crier.draft(person, command)
        if isinstance(command, grammar.OpenForm):
            return Reply.text(
                "Type the announcement after the command:\n  " + grammar.USAGE["announce"]
            )
        sub = command.sub
        if self.extensions and sub in self.extensions:
            return self.extensions[sub](person, command, context)
        if sub == "help":
            return Reply.text(self.help_text(person))
        if sub == "status":
            return self.crier.status(person, command.id_arg())
        if sub == "list":
            return self.crier.listing(person)
        if sub == "cancel":
            ann_id = command.id_arg()
            assert ann_id is not None
            return self.crier.cancel(person, ann_id)
        if sub == "whoami":
            return self.crier.whoami(person)
        if sub in ("optout", "optin"):
            return self.crier.optout(person, command.args[0], out=sub == "optout")
        raise CrierError(
            f"`/crier {sub}` is not available in this installation yet",
            "See `/crier help` for what works here.",
        )

    def help_text(self, person: Person) -> str:
        grants = self.crier.grants(person)
        lines = ["Crier commands:"]
        if grants.has(Role.AUTHOR):
            lines += [f"  {grammar.USAGE[k]}" for k in ("announce", "poll", "remind")]
        lines.append(f"  {grammar.USAGE['crier']}")
        lines.append("AUDIENCE: all · Engineering,Sales · loc:Berlin · @ana@example.com · -Sales")
        lines.append("WHEN: 2026-12-01 09:00 · 09:00 · tomorrow 9am · mon 09:00 · in 10m")
        return "\n".join(lines)
