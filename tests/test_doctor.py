"""`crier doctor` against the fake Slack and Telegram APIs: one line per check."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from storage.db import Database
from tests.fakes.slack_api import SIGNING_SECRET
from tests.fakes.slack_api import TOKEN as SLACK_TOKEN
from tests.fakes.slack_socket import APP_TOKEN, FakeSlackSocket
from tests.fakes.telegram_api import TOKEN as TELEGRAM_TOKEN
from tests.fakes.telegram_api import FakeTelegramAPI

runner = CliRunner()


@pytest.fixture
def fakes():
    with FakeSlackSocket() as slack, FakeTelegramAPI() as telegram:
        yield slack, telegram


def doctor(tmp_path: Path, fakes, **env: str):
    slack, telegram = fakes
    base = {"CRIER_DATABASE_URL": f"sqlite:///{tmp_path}/crier.db",
            "SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.url, "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": "hook-secret_1",
            "TELEGRAM_API_URL": f"http://127.0.0.1:{telegram.port}/bot"}
    return runner.invoke(app, ["doctor"], env={**base, **env})


def checks(output: str) -> list[str]:
    return [line for line in output.splitlines() if line[:1] in "✓✗!"]


def test_a_ready_installation_passes_every_check(tmp_path: Path, fakes):
    Database(f"sqlite:///{tmp_path}/crier.db").migrate()
    result = doctor(tmp_path, fakes)
    assert result.exit_code == 0, result.output
    lines = checks(result.output)
    assert any(line.startswith("✓ database SQLite file ") and "newest revision" in line
               for line in lines)
    assert "✓ Slack accepts SLACK_BOT_TOKEN: @crier in Crier Test (auth.test)" in lines
    assert "✓ Telegram accepts TELEGRAM_BOT_TOKEN: @crier_test_bot (getMe)" in lines
    assert not [line for line in lines if line.startswith("✗")]
    # The effective configuration, secrets masked, each with its source.
    assert "  SLACK_BOT_TOKEN=xoxb-*** (environment)" in result.output
    assert "  TELEGRAM_BOT_TOKEN=*** (environment)" in result.output
    assert "  CRIER_NUDGE_MAX=3 (default)" in result.output
    for secret in (SLACK_TOKEN, SIGNING_SECRET, TELEGRAM_TOKEN, "hook-secret_1"):
        assert secret not in result.output


def test_wrong_tokens_are_one_clear_line_each(tmp_path: Path, fakes):
    Database(f"sqlite:///{tmp_path}/crier.db").migrate()
    result = doctor(tmp_path, fakes, SLACK_BOT_TOKEN="xoxb-0000-bad-tok",
                    TELEGRAM_BOT_TOKEN="999:bad-tok")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = checks(result.output)
    assert ("✗ Slack refused SLACK_BOT_TOKEN (invalid_auth): copy the Bot User OAuth Token "
            "(xoxb-…) from OAuth & Permissions") in lines
    assert ("✗ Telegram refused TELEGRAM_BOT_TOKEN: copy the token @BotFather gave "
            "(/mybots → API Token)") in lines
    assert "bad-tok" not in result.output


def test_missing_or_old_schema_and_half_set_slack_say_what_to_run(tmp_path: Path, fakes):
    result = doctor(tmp_path, fakes, SLACK_SIGNING_SECRET="")
    assert result.exit_code == 1
    lines = checks(result.output)
    assert any(line.startswith("✗ no SQLite database at ") and "run `crier init` here" in line
               for line in lines)
    assert not (tmp_path / "crier.db").exists()  # the doctor did not create it
    assert any(line.startswith("✗ SLACK_SIGNING_SECRET is not set, so Slack stays off")
               for line in lines)
    old = sqlite3.connect(tmp_path / "crier.db")
    old.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
    old.execute("INSERT INTO alembic_version VALUES ('0000old')")
    old.commit()
    old.close()
    result = doctor(tmp_path, fakes)
    assert result.exit_code == 1
    assert any("is at schema revision 0000old, the newest is" in line
               and line.endswith("run `crier init` (back it up first)")
               for line in checks(result.output))


def test_public_urls_are_listed_and_unknown_variables_noticed(tmp_path: Path, fakes):
    Database(f"sqlite:///{tmp_path}/crier.db").migrate()
    result = doctor(tmp_path, fakes, CRIER_NUDGE_MAXX="5")
    lines = checks(result.output)
    assert result.exit_code == 0, result.output
    assert ("! CRIER_NUDGE_MAXX is not a Crier setting and is ignored "
            "(did you mean CRIER_NUDGE_MAX?)") in lines
    assert any("Slack request URL" in line and "https://YOUR-HOST/slack/events" in line
               for line in lines)
    assert any("Telegram webhook" in line and "https://YOUR-HOST/telegram/webhook" in line
               for line in lines)
    result = doctor(tmp_path, fakes, CRIER_PUBLIC_URL="https://127.0.0.1:1/")
    lines = checks(result.output)
    assert any(line.endswith(": https://127.0.0.1:1/slack/events") for line in lines)
    assert any(line.endswith(": https://127.0.0.1:1/telegram/webhook") for line in lines)
    assert any(line.startswith("! https://127.0.0.1:1/healthz") for line in lines)


def test_the_socket_mode_token_is_checked_too(tmp_path: Path, fakes):
    Database(f"sqlite:///{tmp_path}/crier.db").migrate()
    good = checks(doctor(tmp_path, fakes, SLACK_APP_TOKEN=APP_TOKEN).output)
    assert ("✓ Slack accepts SLACK_APP_TOKEN: `crier serve --slack-socket-mode` can connect "
            "(apps.connections.open)") in good
    result = doctor(tmp_path, fakes, SLACK_APP_TOKEN="xapp-1-A0-bad-tok")
    assert result.exit_code == 1 and "bad-tok" not in result.output
    assert any(line.startswith("✗ Slack refused SLACK_APP_TOKEN (invalid_auth): create an "
                               "app-level token with the connections:write scope")
               for line in checks(result.output))
