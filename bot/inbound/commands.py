"""Typed commands: the grammar's parse of a line, dispatched to the ``Crier`` facade."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from announcements.errors import CrierError
from announcements.lifecycle import Crier
from announcements.types import DraftRequest, OutboundMessage, Person, Reply, Role
from bot import grammar

#: A ``/crier`` subcommand added by a feature (report, recall, edit): it gets the
#: person, the parsed command and the context (platform, channel).
#: ``Reply.form`` for a bare ``/announce``: where a platform has forms, the drafting form.
DRAFT_FORM = "draft"

Extension = Callable[[Person, grammar.CrierCommand, dict[str, Any]], Reply]


@dataclass
class Commands:
    crier: Crier
    extensions: dict[str, Extension] = field(default_factory=dict)

    def run(self, person: Person, command: grammar.Command, context: dict[str, Any]) -> Reply:
        """Do what ``command`` asks for ``person`` (runs off the event loop)."""
        if isinstance(command, DraftRequest):
            return self.crier.draft(person, command)
        if isinstance(command, grammar.OpenForm):
            typed = "Type the announcement after the command:\n  " + grammar.USAGE["announce"]
            return Reply(message=OutboundMessage(text=typed), form=DRAFT_FORM)
        sub = command.sub
        if sub in self.extensions:
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
        if sub == "preferences":
            return self.crier.preferences.show(person)
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
        if grants.is_admin:
            lines.append(f"  {grammar.ADMIN_USAGE}")
        lines.append("AUDIENCE: all · Engineering,Sales · loc:Berlin · @ana@example.com · -Sales")
        lines.append("WHEN: 2026-12-01 09:00 · 09:00 · tomorrow 9am · mon 09:00 · in 10m")
        return "\n".join(lines)
