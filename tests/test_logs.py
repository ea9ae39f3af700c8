"""Logs: one format for every logger (text or JSON), and no secret in any line.

`crier serve` runs as a real process at DEBUG against the fake Slack and Telegram
APIs while they refuse a token, answer 401 and 429; every line it writes is read.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from bot.logs import install_redaction
from tests.fakes.slack_api import SIGNING_SECRET, FakeSlackAPI
from tests.fakes.slack_api import TOKEN as SLACK_TOKEN
from tests.fakes.telegram_api import TOKEN as TELEGRAM_TOKEN
from tests.fakes.telegram_api import FakeTelegramAPI

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
                       r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")
WRONG_SLACK_TOKEN = "xoxb-9999-wrong-but-still-a-secret"
WRONG_TELEGRAM_TOKEN = "654321:WRONG-but-still-a-secret"
WEBHOOK_SECRET = "webhook-secret-value_42"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(db_url: str, env: dict[str, str], until: Callable[[], bool], *args: str) -> str:
    """Run `crier serve` until it is healthy and ``until()`` holds; return all it wrote."""
    port = _free_port()
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "TELEGRAM_", "TEAMS_", "CRIER_"))}
    full.update(env, CRIER_DATABASE_URL=db_url, CRIER_LOG_LEVEL="DEBUG")
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port),
                             *args], env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "crier serve did not start"
            time.sleep(0.2)
        while not until():
            assert time.monotonic() < deadline, "the fakes were not called as expected"
            time.sleep(0.2)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert proc.returncode in (0, -15), output  # uvicorn re-raises SIGTERM once shut down
    return output


def test_no_secret_reaches_the_logs_of_a_run_full_of_errors_json(db_url):
    with FakeSlackAPI() as slack, FakeTelegramAPI() as telegram:
        slack.fail("auth.test", "ratelimited", status=429, retry_after=1)
        telegram.fail("getUpdates", 429, retry_after=1)
        telegram.fail("getUpdates", 401, "Unauthorized")
        env = {"SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_URL": slack.url, "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
               "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
               "TELEGRAM_API_URL": f"http://127.0.0.1:{telegram.port}/bot",
               "CRIER_LOG_FORMAT": "json"}

        def polled_after_errors() -> bool:
            return len([c for c in telegram.calls if c.method == "getUpdates"]) >= 3

        output = serve(db_url, env, polled_after_errors, "--telegram-polling")
        assert [c.error for c in slack.requests("auth.test")] == ["ratelimited", None]
    for secret in (SLACK_TOKEN, SIGNING_SECRET, TELEGRAM_TOKEN, WEBHOOK_SECRET,
                   TELEGRAM_TOKEN.split(":")[1]):
        assert secret not in output
    records = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    assert {"time", "level", "logger", "message"} <= records[0].keys()
    messages = [r["message"] for r in records]
    assert any("Slack: signed in as @crier" in m for m in messages)  # after the 429
    assert any("/bot***/getUpdates" in m for m in messages)  # httpx, at DEBUG
    assert any("getUpdates failed" in m for m in messages)  # the 401
    loggers = {r["logger"] for r in records}
    assert {"uvicorn.error", "httpx", "crier"} <= loggers
    assert any(r["logger"].startswith("telegram") and r["level"] == "DEBUG" for r in records)


def test_no_secret_when_the_platforms_refuse_the_tokens_at_start_text(db_url):
    with FakeSlackAPI() as slack, FakeTelegramAPI() as telegram:
        env = {"SLACK_BOT_TOKEN": WRONG_SLACK_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_URL": slack.url, "TELEGRAM_BOT_TOKEN": WRONG_TELEGRAM_TOKEN,
               "TELEGRAM_API_URL": f"http://127.0.0.1:{telegram.port}/bot"}
        # The start-up hooks (getMe, refused) finish before /healthz answers.
        output = serve(db_url, env, lambda: True)
    assert WRONG_TELEGRAM_TOKEN not in output and "WRONG-but" not in output
    assert WRONG_SLACK_TOKEN not in output and "wrong-but" not in output
    assert "ERROR crier.slack: Slack refused SLACK_BOT_TOKEN (invalid_auth)" in output
    # The token was there to hide: in python-telegram-bot's error and in every URL.
    assert "The token `***` was rejected by the server." in output
    assert "/bot***/getMe" in output
    lines = output.splitlines()
    assert any("ERROR crier.telegram" in line and "cannot reach Telegram at start" in line
               for line in lines), output
    # uvicorn's lines look like Crier's own: one format.
    assert any(" INFO uvicorn.error: Application startup complete" in line for line in lines)
    rest = [line for line in lines if not TEXT_LINE.match(line)]
    # Only exception text (indented tracebacks) continues a record on further lines.
    assert all(not line or line[0] in " \t" or line.startswith(("Traceback", "During",
               "The above")) or re.match(r"^[\w.]+(Error|Exception|Token)\b", line)
               for line in rest), rest


def test_any_logger_any_level_exception_text_and_args_are_scrubbed(caplog):
    install_redaction(["pa55-w0rd-configured"])
    logger = logging.getLogger("some.library")
    with caplog.at_level(logging.DEBUG):
        try:
            raise RuntimeError("refused https://api.telegram.org/bot42:ABCdef-_9/getMe "
                               "with pa55-w0rd-configured")
        except RuntimeError:
            logger.exception("call failed: %s %r", "pa55-w0rd-configured",
                             {"token": "xoxb-1-2-abc", "app": "xapp-1-A0-xyz"})
        logger.debug("Authorization: Bearer %s", "xoxp-123-456")
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for secret in ("pa55-w0rd", "42:ABCdef", "xoxb-1-2-abc", "xapp-1-A0", "xoxp-123"):
        assert secret not in text
    assert "/bot***/getMe" in text and "xoxb-***" in text and "Bearer xoxp-***" in text


@pytest.fixture(autouse=True)
def _no_leaked_handlers():
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "crier", False)]:
        root.removeHandler(handler)
