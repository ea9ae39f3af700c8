"""Slack without a public URL: `crier serve --slack-socket-mode` against a Socket Mode fake.

Envelopes arrive over a real WebSocket; each must be acknowledged with its
envelope_id, and the person must see the same effect as over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from announcements.ports import RateLimits
from bot.app import Runtime, build
from bot.cli import app
from bot.server import Plugin
from bot.settings import Settings
from bot.slack import make_platform
from bot.slack.blocks import unescape
from bot.slack.socket_mode import plugin
from tests.factories import company, seed
from tests.fakes.slack_api import SIGNING_SECRET, TEAM, dm
from tests.fakes.slack_events import AVERY, CASEY, ENG, identities
from tests.fakes.slack_socket import APP_TOKEN, FakeSlackSocket


@dataclass
class Connected:
    fake: FakeSlackSocket
    runtime: Runtime
    plugin: Plugin

    async def send(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        ack = await asyncio.to_thread(self.fake.send, kind, payload)
        await self.runtime.extras["slack"].settle()  # type: ignore[attr-defined]
        return ack

    def shown(self, hook: str) -> str:
        return " ".join(unescape(json.dumps(p)) for p in self.fake.hook_posts(hook))


async def running(db, clock, fake: FakeSlackSocket, app_token: str) -> AsyncIterator[Connected]:
    settings = Settings(database_url=str(db.url), slack_bot_token=fake.token,
                        slack_signing_secret=SIGNING_SECRET, slack_app_token=app_token,
                        slack_api_url=fake.url)
    platform = make_platform(settings)
    platform.limits = RateLimits(0, 0)
    runtime = build(settings, {"slack": platform}, clock=clock, db=db)
    socket = plugin(runtime)
    assert not socket.routes  # no public URL: no /slack/events
    for hook in socket.startup:
        await hook()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(bg(stop)) for bg in socket.background]
    try:
        yield Connected(fake, runtime, socket)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        for hook in socket.shutdown:
            await hook()


@pytest.fixture
async def connected(db, clock) -> AsyncIterator[Connected]:
    seed(db, clock, company(), identities())
    with FakeSlackSocket() as fake:
        async for chat in running(db, clock, fake, APP_TOKEN):
            assert await asyncio.to_thread(fake.connected.wait, 10), "Crier did not connect"
            yield chat
        deadline = asyncio.get_running_loop().time() + 5
        while fake.open_sockets and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert fake.open_sockets == 0  # the socket is closed on shutdown


def command(user: str, text: str, hook: str, fake: FakeSlackSocket) -> dict[str, Any]:
    return {"token": "legacy", "team_id": TEAM, "channel_id": "C0GENERAL", "user_id": user,
            "user_name": user.lower(), "command": "/announce", "text": text,
            "response_url": fake.hook_url(hook), "trigger_id": f"trigger-{hook}",
            "api_app_id": "A0CRIER"}


def click(user: str, action: str, hook: str, fake: FakeSlackSocket) -> dict[str, Any]:
    return {"type": "block_actions", "team": {"id": TEAM}, "user": {"id": user},
            "api_app_id": "A0CRIER", "trigger_id": f"trigger-{hook}",
            "container": {"type": "message", "message_ts": "1700000000.000001",
                          "channel_id": "C0GENERAL", "is_ephemeral": True},
            "channel": {"id": "C0GENERAL"}, "response_url": fake.hook_url(hook),
            "actions": [{"type": "button", "action_id": action, "block_id": "b",
                         "value": action, "action_ts": "1700000001.000000"}]}


async def test_commands_clicks_and_events_arrive_over_the_socket_and_are_acknowledged(
        connected: Connected):
    fake = connected.fake
    # The WebSocket URL came from apps.connections.open, asked with the app-level token.
    assert [c.method for c in fake.requests("apps.connections.open")] == [
        "apps.connections.open"]

    ack = await connected.send("slash_commands", command(
        CASEY, "to:Engineering ack Socket Mode works from a laptop", "r1", fake))
    assert ack["envelope_id"] == ack["sent_envelope_id"]
    preview = connected.shown("r1")
    assert "will reach 7 people: Engineering 7" in preview
    assert "Socket Mode works from a laptop" in preview
    ann = re.search(r"submit:(\d+)", preview).group(1)

    ack = await connected.send("interactive", click(CASEY, f"submit:{ann}", "r2", fake))
    assert ack["envelope_id"] == ack["sent_envelope_id"]
    assert "Sent to 3 approvers" in connected.shown("r2")
    assert await connected.runtime.engine.drain() == 3
    request = fake.holding(AVERY, f"approve:{ann}")
    assert request.channel == dm(AVERY)

    eng1 = ENG["eng1@example.com"]
    ack = await connected.send("events_api", {
        "token": "legacy", "team_id": TEAM, "api_app_id": "A0CRIER", "type": "event_callback",
        "event_id": "Ev0SOCKET1", "event_time": 1700000000,
        "event": {"type": "app_home_opened", "user": eng1, "tab": "home"}})
    assert ack["envelope_id"] == ack["sent_envelope_id"]
    assert eng1 in fake.homes  # the App Home was published for them
    assert [m["envelope_id"] for m in fake.received] == ["env-0001", "env-0002", "env-0003"]


async def test_a_refused_app_token_is_one_clear_error_and_no_retry_storm(db, clock, caplog):
    seed(db, clock, company(), identities())
    with FakeSlackSocket() as fake, caplog.at_level(logging.INFO):
        async for chat in running(db, clock, fake, "xapp-1-A0-wrong-one"):
            for _ in range(100):
                if "refused SLACK_APP_TOKEN" in caplog.text:
                    break
                await asyncio.sleep(0.02)
            assert chat.fake.connections == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage().split(":")[0] for r in errors] == [
        "Slack refused SLACK_APP_TOKEN (invalid_auth)"]
    assert not any(r.exc_info for r in caplog.records)
    assert "wrong-one" not in caplog.text
    assert len(fake.requests("apps.connections.open")) == 1


def test_serve_socket_mode_without_an_app_token_says_what_to_set(tmp_path):
    result = CliRunner().invoke(app, ["serve", "--slack-socket-mode"], env={
        "CRIER_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", "SLACK_BOT_TOKEN": "xoxb-1-2",
        "SLACK_SIGNING_SECRET": "abc", "SLACK_APP_TOKEN": ""})
    assert result.exit_code == 2
    assert result.output.startswith("✗ --slack-socket-mode needs SLACK_APP_TOKEN")
    assert "App-Level Tokens" in result.output
