"""The `crier` command line, run as a user would (Typer's runner, real database)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.factories import seed
from tests.harness import make_chat

runner = CliRunner()


def crier(db_url: str, *args: str, stdin: str | None = None):
    # The CLI runs on the real clock: quiet hours off, so the result does not depend on the hour.
    env = {"CRIER_DATABASE_URL": db_url, "CRIER_WORKING_HOURS": "off"}
    return runner.invoke(app, list(args), input=stdin, env=env)


def test_unreachable_database_is_one_clear_line():
    result = crier("postgresql://crier@127.0.0.1:1/nothing", "init")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("✗ cannot reach the database at postgresql+psycopg://crier@")
    assert "Check CRIER_DATABASE_URL" in lines[0]
    assert "Traceback" not in result.output


def test_init_import_and_roles(db_url, tmp_path: Path):
    assert "schema revision" in crier(db_url, "init").output
    people = tmp_path / "people.csv"
    people.write_text(
        "email,name,department,location,timezone,roles\n"
        "ana@example.com,Ana Lima,Engineering,Berlin,Europe/Berlin,author:Engineering\n"
        "bo@example.com,Bo Berg,Sales,London,Europe/London,\n",
        encoding="utf-8",
    )
    result = crier(db_url, "directory", "import", str(people))
    assert result.exit_code == 0, result.output
    assert "2 people: 2 added" in result.output
    assert "1 person: 0 added, 0 updated, 1 unchanged" not in result.output

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "email,name,department,timezone\n"
        "cy@example.com,Cy,Sales,UTC\n"
        "not-an-email,Dee,Sales,UTC\n"
        "ed@example.com,Ed,Sales,Mars/Base\n",
        encoding="utf-8",
    )
    result = crier(db_url, "directory", "import", str(bad))
    assert result.exit_code == 2
    assert "line 3" in result.output and "line 4" in result.output
    result = crier(db_url, "console", "--as", "cy@example.com", stdin="/crier whoami\n")
    assert "is not an active person" in result.output  # the good row was not written either

    result = crier(db_url, "roles", "grant", "bo@example.com", "approver", "Sales")
    assert result.exit_code == 0 and "Granted approver over Sales" in result.output
    result = crier(db_url, "roles", "grant", "bo@example.com", "approver", "Sails")
    assert result.exit_code == 2 and "Sales" in result.output
    result = crier(db_url, "roles", "revoke", "bo@example.com", "approver", "Sales")
    assert "Revoked" in result.output


def test_console_is_scriptable_through_stdin(db, clock, db_url):
    seed(db, clock)
    script = "\n".join([
        "/announce to:Sales ack Quarterly numbers are out",
        "click submit:1",
        "as avery.approver@example.com",
        "click approve:1",
        "as sales1@example.com",
        "inbox",
        "click ack:1",
        "as casey.comms@example.com",
        "/crier status 1",
    ]) + "\n"
    result = crier(db_url, "console", "--as", "casey.comms@example.com", stdin=script)
    assert result.exit_code == 0, result.output
    assert "[ack:1] Got it" in result.output
    assert "Acknowledged 1 of 4" in result.output


async def test_report_and_exports(db, clock, db_url, tmp_path: Path):
    chat = make_chat(db, clock)
    ann = await chat.approved("/announce to:Sales ack Read me")
    await chat.click("sales1@example.com", f"ack:{ann}")
    poll = await chat.approved('/poll to:Sales anonymous "Secret ballot?" "Yes" "No"')
    await chat.click("sales2@example.com", f"vote:{poll}:1")

    out = tmp_path / "reports" / "report.md"
    out.parent.mkdir()
    result = crier(db_url, "report", "weekly", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Acknowledged: 1 of 4 asked" in out.read_text(encoding="utf-8")
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")

    result = crier(db_url, "export", "receipts")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["email"], r["announcement_id"]) for r in rows] == [("sales1@example.com", str(ann))]
    result = crier(db_url, "export", "votes")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["option"]: r["votes"] for r in rows} == {"Yes": "1", "No": "0"}
    assert all(r["email"] == "" for r in rows)  # anonymous: no voters

    result = crier(db_url, "export", "people")
    assert result.exit_code == 2 and "crier export receipts" in result.output


@pytest.mark.parametrize("args", [["directory", "sync", "myspace"]])
def test_unsupported_sync_is_explained(db_url, args):
    result = crier(db_url, *args)
    assert result.exit_code == 2
    assert "crier directory" in result.output
