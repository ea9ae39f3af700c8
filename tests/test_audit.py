"""The audit trail: every transition is an event an admin can read, from chat and the CLI;
people by id, values on one line, and no way to change or delete an event."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import select
from typer.testing import CliRunner

from announcements import audit
from bot.cli import app
from storage.models import AuditEvent
from tests.factories import ADMIN, APPROVER, COMMS
from tests.harness import make_chat

runner = CliRunner()
ENG1, ENG2 = "eng1@example.com", "eng2@example.com"


def crier(db_url: str, *args: str):
    return runner.invoke(app, list(args), env={"CRIER_DATABASE_URL": db_url})


def event_lines(output: str, ann: int) -> list[str]:
    return [line for line in output.splitlines() if f"#{ann}" in line]


async def test_an_admin_can_tell_who_sent_what_to_whom_approved_by_whom_and_who_read_it(
        db, db_url, clock):
    chat = make_chat(db, clock)
    ann = await chat.approved("/announce to:Engineering ack Server move on Saturday")
    assert "Acknowledged" in await chat.click(ENG1, f"ack:{ann}")
    assert "Acknowledged" in await chat.click(ENG2, f"ack:{ann}")

    result = crier(db_url, "audit", "--subject", str(ann))
    assert result.exit_code == 0, result.output
    lines = event_lines(result.output, ann)
    actions = [line.split("  ")[2] for line in lines]
    assert actions[:3] == ["drafted", "submitted", "approved"]
    drafted, approved = lines[0], lines[2]
    assert f"{COMMS.email}  drafted  #{ann}" in drafted  # who wrote it
    assert "audience=Engineering" in drafted and "size=7" in drafted  # to whom
    assert f"{APPROVER.email}  approved  #{ann}" in approved  # approved by whom
    sent = next(line for line in lines if "  sending  " in line or "  sent  " in line)
    assert "crier" in sent  # sent by the delivery engine …
    assert any("recipients=7" in line for line in lines)  # … to seven people
    readers = [line.split("  ")[1] for line in lines if "  acknowledged  " in line]
    assert readers == [ENG1, ENG2]  # who read it
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  ", line) for line in lines)  # UTC

    # The same trail in chat, for an admin only.
    shown = await chat.say(ADMIN.email, f"/crier audit {ann}")
    assert f"Audit trail of #{ann}" in shown
    assert f"{APPROVER.email}  approved" in shown and f"{ENG2}  acknowledged" in shown
    refused = await chat.say(COMMS.email, f"/crier audit {ann}")
    assert "only admins can read the audit trail" in refused
    assert "approved" not in refused


async def test_every_kind_of_change_is_an_event_with_its_actor(db, db_url, clock):
    chat = make_chat(db, clock)
    ann = await chat.approved("/announce to:Sales ack Quarterly numbers")
    await chat.say(COMMS.email, f"/crier edit {ann} Quarterly numbers (corrected)")
    await chat.say(COMMS.email, f"/crier recall {ann}")
    await chat.say(ENG1, "/crier optout polls")
    await chat.say(ADMIN.email, f"/crier grant {ENG1} author Engineering")
    out = await chat.say(COMMS.email, "/announce to:Sales Draft to reject")
    draft = int(re.search(r"submit:(\d+)", out).group(1))  # type: ignore[union-attr]
    await chat.click(COMMS.email, f"submit:{draft}")
    await chat.click(APPROVER.email, f"reject:{draft}", "not now")

    with db.session() as s:
        events = audit.entries(s, audit.Query())
    done = {(e.action, e.actor) for e in events}
    for expected in [("drafted", COMMS.email), ("submitted", COMMS.email),
                     ("approved", APPROVER.email), ("edit_requested", COMMS.email),
                     ("recalled", COMMS.email), ("opted_out", ENG1),
                     ("role_granted", ADMIN.email), ("rejected", APPROVER.email)]:
        assert expected in done, expected
    assert any(e.action in ("sending", "sent") for e in events)
    granted = next(e for e in events if e.action == "role_granted")
    assert granted.subject == ENG1 and granted.detail == {"role": "author",
                                                          "scope": "Engineering"}


async def test_people_are_stored_by_id_and_read_back_by_address(db, clock):
    chat = make_chat(db, clock)
    await chat.say(COMMS.email, f"/announce to:@{ENG1} Your badge is ready")
    with db.session() as s:
        stored = s.execute(select(AuditEvent.detail).where(
            AuditEvent.action == "drafted")).scalar_one()
        shown = audit.entries(s, audit.Query())[-1]
    assert ENG1 not in (stored or "") and "@person#" in (stored or "")
    assert shown.detail["audience"] == f"@{ENG1}"


async def test_newlines_and_control_characters_cannot_forge_an_audit_line(db, db_url, clock):
    chat = make_chat(db, clock)
    out = await chat.say(COMMS.email, "/announce to:Sales Numbers")
    ann = int(re.search(r"submit:(\d+)", out).group(1))  # type: ignore[union-attr]
    await chat.click(COMMS.email, f"submit:{ann}")
    await chat.tick()
    forged = "no\n2026-11-27 15:00:00Z  sam.admin@example.com  approved\u202e"
    assert "Rejected" in await chat.click(APPROVER.email, f"reject:{ann}", forged)

    result = crier(db_url, "audit", "--subject", str(ann))
    lines = event_lines(result.output, ann)
    assert [line.split("  ")[2] for line in lines] == ["drafted", "submitted", "rejected"]
    assert "reason=no\\u000a2026" in lines[-1] and "approved\\u202e" in lines[-1]
    assert "\u202e" not in result.output
    with db.session() as s:  # stored neutralized, not only shown so
        audit.record(s, clock.now(), "probe\r\x00", text="a\x1b[31mred\x85")
        stored = s.execute(select(AuditEvent).where(AuditEvent.action.startswith("probe")))
        row = stored.scalars().one()
    assert row.action == "probe\\u000d\\u0000"
    assert "\x1b" not in (row.detail or "") and "\\\\u001b[31mred\\\\u0085" in (row.detail or "")


def test_the_csv_has_a_header_and_no_formula_cells(db, db_url, clock):
    with db.session() as s:
        audit.record(s, clock.now(), "note", reason="=HYPERLINK(\"http://x\")")
    result = crier(db_url, "audit", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == list(audit.CSV_COLUMNS)
    assert rows[1][3] == "note" and rows[1][1] == "2026-11-27T15:00:00Z"
    assert rows[1][6].startswith("reason==HYPERLINK")  # the cell starts with "r": inert


def test_filters_by_date_and_actor(db, db_url, clock):
    from datetime import timedelta

    from tests.factories import seed

    ids = seed(db, clock)
    with db.session() as s:
        audit.record(s, clock.now() - timedelta(days=3), "old", actor_id=ids[ADMIN.email])
        audit.record(s, clock.now(), "new", actor_id=ids[ADMIN.email])
        audit.record(s, clock.now(), "other", actor_id=ids[COMMS.email])
    since = crier(db_url, "audit", "--since", "2026-11-26")
    assert "  new" in since.output and "  old" not in since.output
    mine = crier(db_url, "audit", "--actor", ADMIN.email.upper())
    assert "  old" in mine.output and "  new" in mine.output and "other" not in mine.output


@pytest.mark.parametrize("since", ["2026-13-01", "yesterday", "2026-11-31 25:00", "\n"])
def test_a_malformed_date_is_named_with_the_forms_that_work(db_url, since):
    result = crier(db_url, "audit", "--since", since)
    assert result.exit_code == 2
    assert "is not a date" in result.output
    assert "2026-11-01 09:00" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_actor_or_subject_is_named(db, db_url, clock):
    assert "there is no" in crier(db_url, "audit", "--actor", "nobody@example.com").output
    bad = crier(db_url, "audit", "--subject", "Sales")
    assert bad.exit_code == 2 and "neither an announcement number" in bad.output


def test_the_application_cannot_change_or_delete_an_audit_event(db, clock):
    with db.session() as s:
        audit.record(s, clock.now(), "kept", note="original")
    with pytest.raises(audit.AppendOnly), db.session() as s:
        row = s.execute(select(AuditEvent)).scalars().first()
        assert row is not None
        row.action = "changed"
    with pytest.raises(audit.AppendOnly), db.session() as s:
        s.execute(update(AuditEvent).values(action="changed"))
    with pytest.raises(audit.AppendOnly), db.session() as s:
        s.delete(s.execute(select(AuditEvent)).scalars().first())
    with db.session() as s:
        assert [e.action for e in audit.entries(s, audit.Query())] == ["kept"]


@pytest.mark.parametrize("statement", ["UPDATE audit_event SET action = 'changed'",
                                       "DELETE FROM audit_event"])
def test_the_database_refuses_to_update_or_delete_audit_rows(db, clock, statement):
    """On PostgreSQL (CRIER_TEST_POSTGRES_URL) and SQLite a trigger refuses it: even SQL
    typed past the application cannot rewrite history."""
    with db.session() as s:
        audit.record(s, clock.now(), "kept")
    with pytest.raises(DBAPIError) as refused, db.engine.begin() as conn:
        conn.execute(text(statement))
    assert "audit_event is append-only" in str(refused.value)
    with db.session() as s:
        assert [e.action for e in audit.entries(s, audit.Query())] == ["kept"]


def test_wrong_linking_codes_are_counted_outside_the_audit_log(db, clock):
    """The rate limit has its own table, keyed by a hash; audit rows name no chat account."""
    from datetime import timedelta

    from announcements import linking
    from announcements.errors import CrierError
    from storage.models import LinkFailure
    from tests.factories import seed

    seed(db, clock)
    account = "4242424242"
    for _ in range(linking.MAX_WRONG_CODES):
        with pytest.raises(CrierError, match="not valid"):
            linking.redeem(db, clock, "telegram", account, account, "wrong-code-123456")
    with pytest.raises(CrierError, match="too many wrong codes"):
        linking.redeem(db, clock, "telegram", account, account, "wrong-code-123456")
    issued = linking.create_invite(db, clock, ENG1, "telegram")
    with pytest.raises(CrierError, match="too many wrong codes"):  # even a right code waits
        linking.redeem(db, clock, "telegram", account, account, issued.code)

    clock.advance(timedelta(hours=1, minutes=1))
    linked = linking.redeem(db, clock, "telegram", account, account, issued.code)
    assert linked.person.email == ENG1
    with db.session() as s:
        keys = s.execute(select(LinkFailure.account_key)).scalars().all()
        events = audit.entries(s, audit.Query())
        raw = " ".join(e.detail or "" for e in s.execute(select(AuditEvent)).scalars())
    assert keys and all(account not in k for k in keys)
    assert "link_failed" not in {e.action for e in events}
    assert account not in raw and ENG1 not in raw
    assert [(e.action, e.subject) for e in events] == [("link_invited", ENG1), ("linked", ENG1)]
