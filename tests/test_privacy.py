"""Privacy requests: export everything about a person, erase it with counts intact,
legal holds, and the personal-data inventory that both follow."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import inspect, text
from sqlmodel import SQLModel, select
from typer.testing import CliRunner

import storage.models  # noqa: F401  (registers the tables)
from announcements import audit
from announcements.personal_data import PERSONAL_DATA
from announcements.reports import weekly
from bot.cli import app
from storage.models import InboundEvent, Person, ReportSubscription
from tests.factories import ADMIN, APPROVER, COMMS, Staff
from tests.harness import make_chat

runner = CliRunner()
ENG1 = "eng1@example.com"


def crier(db_url: str, *args: str):
    return runner.invoke(app, list(args), env={"CRIER_DATABASE_URL": db_url})


def every_text_value(db) -> str:
    """Every value of every column of every table, as one string."""
    parts: list[str] = []
    with db.engine.connect() as conn:
        for table in sorted(inspect(conn).get_table_names()):
            rows = conn.execute(text(f'SELECT * FROM "{table}"'))
            parts.extend(sorted("\t".join(str(v) for v in row) for row in rows))
    return "\n".join(parts)


async def figures(chat, ann: int, poll: int, anon: int) -> tuple[str, ...]:
    """What an approver reads in status, and the weekly report's numbers."""
    report = weekly(chat.runtime.db, chat.clock.now() + timedelta(minutes=1), chart=False)
    lines = sorted((a.id, a.recipients, a.delivered, a.acknowledged)
                   for a in report.announcements)
    return (await chat.say(APPROVER.email, f"/crier status {ann}"),
            await chat.say(APPROVER.email, f"/crier status {poll}"),
            await chat.say(APPROVER.email, f"/crier status {anon}"),
            repr(lines), repr(sorted(report.departments)),
            repr(sorted((p.id, options, n) for p, options, n in report.polls)))


async def scenario(db, clock):
    chat = make_chat(db, clock, identities={ENG1: {"console": ENG1}})
    ann = await chat.approved(f"/announce to:Engineering,@{ENG1} ack Fire drill at noon")
    poll = await chat.approved('/poll to:Engineering "Lunch?" "Pizza" "Salad"')
    anon = await chat.approved('/poll to:Engineering anonymous "Rate your manager?" "Good" '
                               '"Bad"')
    await chat.click(ENG1, f"ack:{ann}")
    await chat.click(ENG1, f"vote:{poll}:2")
    await chat.click(ENG1, f"vote:{anon}:2")
    await chat.click("eng2@example.com", f"vote:{anon}:1")
    await chat.say(ENG1, "/crier optout polls")
    await chat.tick()
    return chat, ann, poll, anon


async def test_export_then_erase_round_trip_keeps_every_count(db, db_url, clock, tmp_path):
    chat, ann, poll, anon = await scenario(db, clock)
    with db.session() as s:
        s.add(ReportSubscription(platform="console", channel=ENG1, created_at=clock.now()))
        s.add(InboundEvent(platform="console", event_id=f"click:{ENG1}:x:ack:{ann}@1",
                           received_at=clock.now()))
    before = await figures(chat, ann, poll, anon)

    out = tmp_path / "eng1.json"
    result = crier(db_url, "privacy", "export", ENG1, "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["person"]["email"] == ENG1 and data["person"]["name"] == "Engineer 1"
    assert data["identities"] == [{"platform": "console", "account": ENG1, "address": None,
                                   "linked_at": data["identities"][0]["linked_at"]}]
    assert {d["announcement"] for d in data["deliveries"]} >= {ann, poll, anon}
    assert [r["announcement"] for r in data["receipts"]] == [ann]
    answers = {a["announcement"]: a for a in data["poll_answers"]}
    assert answers[poll]["option"] == "Salad"
    assert answers[anon] == {"announcement": anon, "answered": True,
                             "at": answers[anon]["at"]}  # never which option
    assert "Bad" not in out.read_text()
    assert data["named_in_audiences"] == [ann]
    assert data["opt_outs"] == ["survey"]  # `/crier optout polls` is the survey category
    assert data["report_subscriptions"] == [{"platform": "console", "channel": ENG1}]
    assert {"acknowledged", "voted", "opted_out"} <= {e["action"] for e in data["audit_events"]}

    erased = crier(db_url, "privacy", "erase", ENG1)
    assert erased.exit_code == 0, erased.output
    assert "Erased person #" in erased.output and "Counts in status and reports" in erased.output

    with db.session() as s:
        pseudonym = s.execute(select(Person.email).where(
            Person.email.startswith("erased-"))).scalar_one()
    after = await figures(chat, ann, poll, anon)
    # Status and reports unchanged; the audience names the pseudonym instead.
    assert after == tuple(f.replace(ENG1, pseudonym) for f in before)
    assert "Acknowledged 1 of 7" in after[0] and "Engineering: 1 of 7" in after[0]
    assert "Answers: 2 of 7" in after[2] and "Answers: 1 of 7" in after[1]
    assert f"({ann}, 7, 7, 1)" in after[3] and "Engineering" in after[4]
    everything = every_text_value(db).lower()
    assert ENG1 not in everything and "engineer 1" not in everything
    with db.session() as s:
        row = s.execute(select(Person).where(Person.email.startswith("erased-"))).scalar_one()
        assert row.active is False and row.erased_at is not None
        assert row.department == "Engineering"  # kept for per-department counts
        trail = audit.entries(s, audit.Query(person_id=row.id))
    assert trail[-1].action == "privacy_erased"
    assert {e.actor for e in trail if e.action == "acknowledged"} == {row.email}

    again = crier(db_url, "privacy", "export", row.email)
    assert json.loads(again.output)["identities"] == []
    assert crier(db_url, "privacy", "erase", row.email).exit_code == 2  # nothing left


def test_erasing_an_unknown_person_is_refused_and_names_the_address(db, db_url, clock):
    from tests.factories import seed

    seed(db, clock)
    before = every_text_value(db)
    for command in ("erase", "export", "hold", "release"):
        result = crier(db_url, "privacy", command, "nobody@example.com")
        assert result.exit_code == 2, result.output
        assert 'there is no "nobody@example.com" in the directory' in result.output
        assert "Traceback" not in result.output
    assert every_text_value(db) == before


async def test_a_legal_hold_refuses_erasure_until_released(db, db_url, clock):
    chat, ann, *_ = await scenario(db, clock)
    assert "is under a legal hold" in crier(db_url, "privacy", "hold", ENG1).output
    assert "already under a legal hold" in crier(db_url, "privacy", "hold", ENG1).output
    before = every_text_value(db)

    refused = crier(db_url, "privacy", "erase", ENG1)
    assert refused.exit_code == 2
    assert f"{ENG1} is under a legal hold: nothing was erased" in refused.output
    assert "crier privacy release EMAIL" in refused.output
    assert every_text_value(db) == before  # not one value changed

    assert "is released" in crier(db_url, "privacy", "release", ENG1).output
    assert crier(db_url, "privacy", "erase", ENG1).exit_code == 0
    with db.session() as s:
        actions = [e.action for e in audit.entries(s, audit.Query())]
    assert actions[-3:] == ["legal_hold_set", "legal_hold_released", "privacy_erased"]


def test_erasing_the_last_admin_is_refused(db, db_url, clock):
    from tests.factories import seed

    seed(db, clock, [ADMIN, COMMS, Staff("x@example.com", "X", "Sales")])
    result = crier(db_url, "privacy", "erase", ADMIN.email)
    assert result.exit_code == 2 and "the last admin" in result.output
    with db.session() as s:
        assert s.execute(select(Person).where(Person.email == ADMIN.email)).first()


def test_every_column_that_refers_to_a_person_has_a_rule():
    listed = {(p.table, c) for p in PERSONAL_DATA for c in p.columns}
    refs = {(t.name, fk.parent.name) for t in SQLModel.metadata.tables.values()
            for fk in t.foreign_keys if fk.column.table.name == "person"}
    assert refs, "no foreign keys found"
    assert refs - listed == set()
    assert {("person", "email"), ("announcement", "audience"), ("inbound_event", "event_id"),
            ("report_subscription", "channel")} <= listed


def test_privacy_md_lists_every_place():
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "privacy.md").read_text()
    for place in PERSONAL_DATA:
        assert re.search(rf"`{place.table}`", doc), place.table


async def test_copies_not_yet_sent_to_an_erased_person_are_cancelled(db, db_url, clock):
    chat = make_chat(db, clock, identities={ENG1: {"console": ENG1}})
    out = await chat.say(COMMS.email, "/announce to:Engineering Parking closed tomorrow")
    ann = int(re.search(r"submit:(\d+)", out).group(1))  # type: ignore[union-attr]
    await chat.click(COMMS.email, f"submit:{ann}")
    await chat.tick()
    assert f"Approved #{ann}" in await chat.click(APPROVER.email, f"approve:{ann}")
    assert crier(db_url, "privacy", "erase", ENG1).exit_code == 0  # before the engine ran
    await chat.tick()
    assert chat.messages(ENG1, ann) == []
    assert len(chat.messages("eng2@example.com", ann)) == 1
    status = await chat.say(APPROVER.email, f"/crier status {ann}")
    assert "Sent 6 of 6" in status
