"""Role administration in chat: ``/crier roles``, ``/crier grant``, ``/crier revoke`` for
admins, audited with the admin as actor; everyone else is refused."""

from __future__ import annotations

from announcements import audit
from tests.factories import ADMIN, APPROVER, COMMS
from tests.harness import make_chat

ENG1 = "eng1@example.com"


async def test_an_admin_grants_and_revokes_in_chat_and_each_change_is_audited(db, clock):
    chat = make_chat(db, clock)
    listed = await chat.say(ADMIN.email, "/crier roles")
    assert listed.startswith("Roles (")
    assert f"admin over everyone: Sam Rivera <{ADMIN.email}>" in listed
    assert "author over Engineering: Erin Park <erin.eng@example.com>" in listed

    refused = await chat.say(ENG1, "/announce to:Engineering Hello team")
    assert refused.startswith("✗")
    granted = await chat.say(ADMIN.email, f"/crier grant {ENG1} author engineering")
    assert granted == f"Granted author over Engineering to Engineer 1 <{ENG1}>."
    assert "submit:" in await chat.say(ENG1, "/announce to:Engineering Hello team")
    assert "nothing changed" in await chat.say(ADMIN.email,
                                               f"/crier grant {ENG1} author Engineering")

    revoked = await chat.say(ADMIN.email, f"/crier revoke {ENG1} author Engineering")
    assert revoked == f"Revoked author over Engineering from Engineer 1 <{ENG1}>."
    assert (await chat.say(ENG1, "/announce to:Engineering Again")).startswith("✗")

    with db.session() as s:
        changes = [(e.action, e.actor, e.subject, e.detail) for e in audit.entries(
            s, audit.Query()) if e.action.startswith("role_")]
    assert changes == [
        ("role_granted", ADMIN.email, ENG1, {"role": "author", "scope": "Engineering"}),
        ("role_revoked", ADMIN.email, ENG1, {"role": "author", "scope": "Engineering"}),
    ]


async def test_non_admins_are_refused_and_nothing_changes(db, clock):
    chat = make_chat(db, clock)
    for who in (COMMS.email, APPROVER.email, ENG1):
        for line, what in ((f"/crier grant {ENG1} admin", "grant roles"),
                           (f"/crier revoke {ADMIN.email} admin", "revoke roles"),
                           ("/crier roles", "list roles"),
                           ("/crier audit 1", "read the audit trail")):
            out = await chat.say(who, line)
            assert out.startswith(f"✗ only admins can {what}"), (who, line, out)
            assert "Ask an admin" in out
    with db.session() as s:
        assert not [e for e in audit.entries(s, audit.Query()) if e.action.startswith("role_")]
    assert "admin over everyone: Sam Rivera" in await chat.say(ADMIN.email, "/crier roles")


async def test_bad_grants_say_what_to_type(db, clock):
    chat = make_chat(db, clock)
    missing = await chat.say(ADMIN.email, f"/crier grant {ENG1}")
    assert "needs an email and a role" in missing and "/crier grant EMAIL ROLE" in missing
    typo = await chat.say(ADMIN.email, f"/crier grant {ENG1} authr Sales")
    assert 'unknown role "authr" (did you mean author?)' in typo
    place = await chat.say(ADMIN.email, f"/crier grant {ENG1} author Sals")
    assert 'there is no department "Sals"' in place and "Sales" in place
    nobody = await chat.say(ADMIN.email, "/crier grant nobody@example.com author Sales")
    assert 'there is no "nobody@example.com" in the directory' in nobody
    last = await chat.say(ADMIN.email, f"/crier revoke {ADMIN.email} admin")
    assert "the last admin" in last and last.startswith("✗")
    assert "admin over everyone: Sam Rivera" in await chat.say(ADMIN.email, "/crier roles")
    no_id = await chat.say(ADMIN.email, "/crier audit")
    assert "needs an announcement number" in no_id


async def test_help_shows_admin_commands_to_admins_only(db, clock):
    chat = make_chat(db, clock)
    assert "/crier audit ID | roles | grant" in await chat.say(ADMIN.email, "/crier help")
    assert "grant EMAIL ROLE" not in await chat.say(COMMS.email, "/crier help")
