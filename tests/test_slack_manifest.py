"""manifest.yml creates an app that reaches every handler, with the scopes the README explains;
and the fake Web API limits posting the way the benchmarks rely on."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import yaml

from bot.grammar import parse
from bot.slack.app import COMMANDS
from bot.slack.commands import SLACK_BUILT_IN, SLACK_SHORTCUTS
from tests.fakes.slack_api import FakeSlackAPI

ROOT = Path(__file__).resolve().parents[1]
EVENTS_URL = "https://YOUR-HOST/slack/events"


def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def test_manifest_points_everything_at_the_one_endpoint():
    m = manifest()
    commands = m["features"]["slash_commands"]
    registered = tuple(c["command"] for c in commands)
    assert registered == tuple(f"/{name}" for name in SLACK_SHORTCUTS)
    assert set(registered) <= set(COMMANDS)  # the app listens for each one
    for c in commands:
        assert c["url"] == EVENTS_URL
        assert c["description"] and c["usage_hint"]
        assert c["should_escape"] is False
    settings = m["settings"]
    assert settings["interactivity"] == {"is_enabled": True, "request_url": EVENTS_URL}
    assert settings["event_subscriptions"] == {"request_url": EVENTS_URL,
                                               "bot_events": ["app_home_opened"]}
    assert settings["socket_mode_enabled"] is False
    home = m["features"]["app_home"]
    assert home["home_tab_enabled"] and home["messages_tab_enabled"]


def test_no_command_takes_a_slack_built_in_name_and_all_are_under_crier():
    registered = [c["command"] for c in manifest()["features"]["slash_commands"]]
    assert registered == ["/announce", "/poll", "/crier"]
    assert not {name.lstrip("/") for name in registered} & SLACK_BUILT_IN
    assert "remind" in SLACK_BUILT_IN  # Slack's own /remind would never reach Crier
    # What the shortcuts do, and /remind, all work typed after /crier.
    assert parse("/crier remind to:Sales every:mon 09:00 Timesheets") == parse(
        "/remind to:Sales every:mon 09:00 Timesheets")
    assert parse('/crier poll "Lunch?" "Pizza" "Sushi"') == parse('/poll "Lunch?" "Pizza" "Sushi"')
    assert parse("/crier announce to:Sales ack Hello") == parse("/announce to:Sales ack Hello")


def test_every_scope_is_explained_in_the_readme_section():
    scopes = manifest()["oauth_config"]["scopes"]["bot"]
    assert {"commands", "chat:write", "users:read", "users:read.email", "files:write"} <= set(
        scopes)
    assert not {"chat:write.public", "channels:history", "im:history", "admin"} & set(scopes)
    docs = (ROOT / "docs" / "slack.md").read_text()
    table = re.findall(r"^\| `([a-z:.]+)` \|", docs, re.MULTILINE)
    assert sorted(table) == sorted(scopes)


def test_the_fake_answers_429_beyond_slacks_posting_limits():
    with FakeSlackAPI() as fake:
        fake.set_limit(per_second=2, per_channel=1, burst=2)
        headers = {"Authorization": f"Bearer {fake.token}"}
        with httpx.Client(base_url=fake.url, headers=headers) as http:
            def post(channel: str) -> httpx.Response:
                return http.post("chat.postMessage", json={"channel": channel, "text": "hi"})

            assert post("U1").json()["ok"] is True
            same = post("U1")  # the same conversation within a second
            assert same.status_code == 429 and same.headers["Retry-After"] == "1"
            assert post("U2").json()["ok"] is True  # the burst allows a second one
            over = post("U3")  # beyond 2 per second for the workspace
            assert over.status_code == 429 and over.json()["error"] == "ratelimited"
            assert http.post("chat.postMessage", json={"channel": "U4", "text": "x"},
                             headers={"Authorization": "Bearer xoxb-wrong"}
                             ).json()["error"] == "invalid_auth"
        assert fake.rate_limited == 2
        assert len(fake.messages("U1")) == 1 and fake.messages("U3") == []
