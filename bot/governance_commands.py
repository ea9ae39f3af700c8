"""``/crier audit ID``, ``/crier roles``, ``/crier grant|revoke EMAIL ROLE [SCOPE]``.

Only admins may read the audit trail and administer roles from chat; anyone else
is refused with what to do instead. Grants and revokes go through the directory's
roles module (the last-admin rule holds there) and are audited with the admin as
the actor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from announcements import audit
from announcements.directory import grant_role, list_roles, revoke_role
from announcements.errors import CrierError, NotAllowed
from announcements.lifecycle import Crier
from announcements.types import Person, Reply
from bot.grammar import CrierCommand

#: The newest events ``/crier audit ID`` shows (the CLI shows all).
CHAT_AUDIT_LIMIT = 50
GRANT_USAGE = "Usage: /crier grant EMAIL ROLE [SCOPE], e.g. /crier grant ana@example.com " \
              "author Engineering"

Handler = Callable[[Person, CrierCommand, dict[str, Any]], Reply]


def _admin_only(crier: Crier, person: Person, what: str) -> None:
    if not crier.grants(person).is_admin:
        raise NotAllowed(f"only admins can {what}",
                         "Ask an admin (`/crier whoami` shows your roles).")


def audit_trail(crier: Crier, person: Person, cmd: CrierCommand) -> Reply:
    _admin_only(crier, person, "read the audit trail")
    ann_id = cmd.id_arg()
    assert ann_id is not None  # the grammar requires it
    with crier.db.session() as s:
        rows = audit.entries(s, audit.Query(announcement_id=ann_id, limit=CHAT_AUDIT_LIMIT))
    if not rows:
        return Reply.text(f"No audit events for #{ann_id}. (`/crier list` shows the numbers.)")
    title = f"Audit trail of #{ann_id} (UTC, oldest first"
    title += f", newest {CHAT_AUDIT_LIMIT})" if len(rows) == CHAT_AUDIT_LIMIT else ")"
    return Reply.text(title + ":\n" + audit.as_table(rows) +
                      "\nFor everything: `crier audit --subject " + str(ann_id) + "`.")


def roles(crier: Crier, person: Person, _cmd: CrierCommand) -> Reply:
    _admin_only(crier, person, "list roles")
    holders = list_roles(crier.db)
    if not holders:
        return Reply.text("Nobody holds a role yet. " + GRANT_USAGE)
    lines = [f"Roles ({len(holders)} grants):"]
    lines += [f"  {h.role} over {h.scope_text}: {h.name} <{h.email}>"
              + ("" if h.active else " (inactive)") for h in holders]
    return Reply.text("\n".join(lines))


def change(crier: Crier, person: Person, cmd: CrierCommand) -> Reply:
    verb = cmd.sub
    _admin_only(crier, person, f"{verb} roles")
    if len(cmd.args) < 2:
        raise CrierError(f"`/crier {verb}` needs an email and a role", GRANT_USAGE)
    email, role = cmd.args[0].removeprefix("@"), cmd.args[1]
    scope = " ".join(cmd.args[2:]) or "*"
    do = grant_role if verb == "grant" else revoke_role
    return Reply.text(do(crier.db, email, role, scope, crier.clock, actor_id=person.id))


def commands(crier: Crier) -> dict[str, Handler]:
    """``Pipeline`` extensions for the governance subcommands."""
    return {
        "audit": lambda p, c, _ctx: audit_trail(crier, p, c),
        "roles": lambda p, c, _ctx: roles(crier, p, c),
        "grant": lambda p, c, _ctx: change(crier, p, c),
        "revoke": lambda p, c, _ctx: change(crier, p, c),
    }
