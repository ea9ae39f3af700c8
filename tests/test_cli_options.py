"""The command line's own options: a bad ``--days``, ``--out`` or ``--db`` is one clear
line and exit status 2, before anything is written; help reads as plain text."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.main import get_command

from announcements.limits import MAX_REPORT_DAYS
from bot.cli import app
from tests.test_cli import crier


def refusal(result) -> list[str]:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return [line for line in result.output.splitlines() if line.strip()]


@pytest.mark.parametrize("args", [
    ["report", "weekly", "--days", "-3"],
    ["report", "weekly", "--days", "0"],
    ["report", "weekly", "--days", str(MAX_REPORT_DAYS + 1)],
    ["export", "receipts", "--days", "-3"],
    ["export", "votes", "--days", "99999999999999"],
])
def test_days_back_must_be_a_positive_span(db_url, args):
    lines = refusal(crier(db_url, *args))
    assert lines[0] == f"✗ --days {args[-1]} is not a number of days back"
    assert lines[1] == f"Give 1 to {MAX_REPORT_DAYS}, e.g. --days 7 for the last week."


@pytest.mark.parametrize("args", [["report", "weekly"], ["export", "receipts"]])
def test_out_into_a_missing_folder_names_the_folder(db_url, tmp_path: Path, args):
    target = tmp_path / "nowhere" / "out.csv"
    lines = refusal(crier(db_url, *args, "--out", str(target)))
    assert lines[0] == f"✗ --out {target}: the folder {target.parent} does not exist"
    assert f"mkdir -p {target.parent}" in lines[1]
    assert not target.parent.exists()
    lines = refusal(crier(db_url, *args, "--out", str(tmp_path)))
    assert lines[0] == f"✗ --out {tmp_path} is a folder, not a file"


def test_export_writes_into_an_existing_folder(db_url, tmp_path: Path):
    target = tmp_path / "receipts.csv"
    result = crier(db_url, "export", "receipts", "--days", "30", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8").startswith("announcement_id,")


def test_demo_into_a_missing_folder_says_so(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = crier("sqlite:///unused.db", "demo", "--db", "sub/dir/demo.db")
    lines = refusal(result)
    assert lines[0] == "✗ --db sub/dir/demo.db: the folder sub/dir does not exist"
    assert "server" not in result.output
    assert not (tmp_path / "sub").exists()


def _commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``command`` (Typer's groups have ``commands``)."""
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


def test_help_shows_no_bool_placeholders():
    every = _commands(get_command(app))
    assert ("demo",) in every and ("report", "weekly") in every and ("export",) in every
    for path in every:
        result = crier("sqlite:///unused.db", *path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        assert "Show this message and exit." in result.output
    demo = crier("sqlite:///unused.db", "demo", "--help").output
    assert "--fresh      start again from the sample data" in demo
