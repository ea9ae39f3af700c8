"""Configuration from the environment and ./.env: every bad value is one line, exit 2."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from announcements.errors import CrierError
from bot.cli import app
from bot.settings import load_settings

runner = CliRunner()


@pytest.fixture
def clean_environ() -> Iterator[None]:
    """``.env`` files load into os.environ: put it back afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_platforms_are_on_only_with_their_credentials_and_secrets_stay_hidden():
    settings = load_settings({
        "CRIER_DATABASE_URL": "postgresql://crier:db-very-secret@db/crier",
        "SLACK_BOT_TOKEN": "xoxb-very-secret", "SLACK_SIGNING_SECRET": "sig-very-secret",
        "TELEGRAM_WEBHOOK_SECRET": "tg-very-secret", "SLACK_APP_TOKEN": "xapp-very-secret",
        "CRIER_PLATFORM_ORDER": "Telegram, slack",
    })
    assert settings.slack_enabled and not settings.telegram_enabled and not settings.teams_enabled
    assert settings.platform_order == ("telegram", "slack")
    shown = repr(settings) + str(settings)
    assert "very-secret" not in shown and "slack_bot_token='xoxb-***'" in shown
    assert "crier:***@db" in shown
    assert set(settings.secrets()) >= {"xoxb-very-secret", "db-very-secret", "xapp-very-secret"}


def test_a_bad_number_is_explained():
    with pytest.raises(CrierError, match="CRIER_NUDGE_MAX='lots' is not a whole number"):
        load_settings({"CRIER_NUDGE_MAX": "lots"})


@pytest.mark.parametrize(("var", "value", "says"), [
    ("CRIER_RATE_LIMIT_SLACK", "fast", "e.g. CRIER_RATE_LIMIT_SLACK=8,1,10"),
    ("CRIER_RATE_LIMIT_TELEGRAM", "abc", "PER_SECOND[,PER_CONVERSATION[,BURST[,CEILING]]]"),
    ("CRIER_RATE_LIMIT_SLACK", "20,1,10,12",
     "the ceiling 12 is below the starting rate 20; give a CEILING of at least PER_SECOND"),
    ("CRIER_RATE_LIMIT_TELEGRAM", "nan", "PER_SECOND"),
    ("CRIER_RATE_LIMIT_SLACK", "0,1", "PER_SECOND above 0"),
    ("CRIER_RATE_LIMIT_WHATSAPP", "3", "the platforms are slack, teams, telegram"),
    ("CRIER_LOG_LEVEL", "LOUD", "e.g. CRIER_LOG_LEVEL=INFO"),
    ("CRIER_LOG_FORMAT", "xml", "e.g. CRIER_LOG_FORMAT=json"),
    ("CRIER_PLATFORM_ORDER", "slack,whatsapp", "names whatsapp"),
    ("CRIER_DELIVERY_CONCURRENCY", "0", "must be at least 1; e.g. CRIER_DELIVERY_CONCURRENCY=32"),
    ("CRIER_DELIVERY_CONCURRENCY", "inf", "is not a number"),
    ("CRIER_DELIVERY_BATCH", "2.5", "is not a whole number; e.g. CRIER_DELIVERY_BATCH=200"),
    ("CRIER_DELIVERY_LEASE", "-1", "e.g. CRIER_DELIVERY_LEASE=120"),
    ("CRIER_DELIVERY_MAX_ATTEMPTS", "many", "is not a number"),
    ("CRIER_PROGRESS_INTERVAL", "0", "must be at least"),
    ("CRIER_PROGRESS_MIN_RECIPIENTS", "-5", "must be at least 0"),
    ("CRIER_WORKING_HOURS", "9-5pm", "e.g. CRIER_WORKING_HOURS=08:00-20:00"),
    ("CRIER_WORKING_DAYS", "weekdays", "e.g. CRIER_WORKING_DAYS=mon-fri"),
    ("CRIER_REPORT_SCHEDULE", "never", "e.g. CRIER_REPORT_SCHEDULE=mon 09:00"),
    ("CRIER_REPORT_TIMEZONE", "Mars/Base", "e.g. CRIER_REPORT_TIMEZONE=Europe/Berlin"),
    ("CRIER_REPORT_GRACE_MINUTES", "99999999999999999999", "is not between 0 and 10080"),
    ("CRIER_NUDGE_MAX", "-1", "is not between 0 and 100"),
    ("CRIER_PUBLIC_URL", "http://crier.example.com", "https://"),
    ("SLACK_API_URL", "slack.com/api", "is not an http(s):// URL"),
    ("TELEGRAM_API_URL", "ftp://x", "is not an http(s):// URL"),
    ("CRIER_DATABASE_URL", "crier.db", "is not a database URL"),
])
def test_every_bad_setting_is_one_line_naming_variable_value_and_example(
        tmp_path: Path, var: str, value: str, says: str):
    env = {"CRIER_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", var: value}
    result = runner.invoke(app, ["init"], env=env)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert lines == [lines[0]] and lines[0].startswith(f"✗ {var}="), result.output
    assert repr(value) in lines[0] and says in lines[0] and "e.g." in lines[0]
    assert not (tmp_path / "c.db").exists()  # nothing ran


@pytest.mark.parametrize(("var", "value"), [
    ("SLACK_BOT_TOKEN", "xoxp-user-token-very-secret"),
    ("SLACK_APP_TOKEN", "xoxb-not-an-app-token-very-secret"),
    ("TELEGRAM_BOT_TOKEN", "very-secret"),
    ("TELEGRAM_WEBHOOK_SECRET", "very secret!"),
])
def test_a_bad_secret_is_named_but_never_shown(tmp_path: Path, var: str, value: str):
    result = runner.invoke(app, ["init"], env={
        "CRIER_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", var: value})
    assert result.exit_code == 2
    assert result.output.startswith(f"✗ {var} (value hidden) ")
    assert "very" not in result.output and len(result.output.strip().splitlines()) == 1


def test_dotenv_in_the_working_directory_is_read_and_the_environment_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_environ: None):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "CRIER_DATABASE_URL=sqlite:///./from-dotenv.db\nCRIER_NUDGE_MAX=7\n"
        "CRIER_LOG_LEVEL=debug\n", encoding="utf-8")
    monkeypatch.delenv("CRIER_DATABASE_URL", raising=False)
    monkeypatch.setenv("CRIER_NUDGE_MAX", "5")
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-dotenv.db").exists()
    settings = load_settings()
    assert settings.nudge_max == 5 and settings.log_level == "DEBUG"


def test_a_bad_value_in_dotenv_is_one_line_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_environ: None):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRIER_RATE_LIMIT_SLACK", raising=False)
    (tmp_path / ".env").write_text("CRIER_RATE_LIMIT_SLACK=fast\n", encoding="utf-8")
    result = runner.invoke(app, ["report", "weekly"], env={
        "CRIER_DATABASE_URL": f"sqlite:///{tmp_path}/c.db"})
    assert result.exit_code == 2
    assert result.output.strip() == ("✗ CRIER_RATE_LIMIT_SLACK='fast' should be "
                                     "PER_SECOND[,PER_CONVERSATION[,BURST[,CEILING]]]; "
                                     "e.g. CRIER_RATE_LIMIT_SLACK=8,1,10")


def test_commands_outside_the_main_group_refuse_a_bad_setting_in_one_line_too(tmp_path: Path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRIER_", "TELEGRAM_"))}
    env.update(CRIER_DATABASE_URL=f"sqlite:///{tmp_path}/c.db", CRIER_LOG_LEVEL="LOUD",
               TELEGRAM_BOT_TOKEN="123:abc")
    done = subprocess.run([sys.executable, "-m", "bot.cli", "telegram", "invite", "a@b.c"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("✗ CRIER_LOG_LEVEL='LOUD' is not one of DEBUG, INFO, WARNING, "
                                   "ERROR, CRITICAL; e.g. CRIER_LOG_LEVEL=INFO")
