"""Slack's side of inbound requests: signed slash commands, clicks, form submissions
and events, posted to Crier's ``POST /slack/events`` in-process (httpx ASGI transport).

``SlackChat`` is a workspace in a test: people type commands, click buttons on the
messages the fake Web API holds, fill in forms, and read what Slack would show.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from announcements.clock import ManualClock
from announcements.ports import RateLimits
from bot.app import Runtime, build
from bot.server import create_app
from bot.settings import Settings
from bot.slack import SlackBot, make_platform, plugin
from storage.db import Database
from tests.factories import APPROVER, COMMS, ENG_LEAD
from tests.fakes.slack_api import SIGNING_SECRET, TEAM, FakeSlackAPI, Message, dm
from tests.fakes.slack_blocks import action_ids, visible_text

# The test company's Slack accounts (tests.factories.company()).
CASEY, AVERY, ERIN, SAM = "U001", "U002", "U003", "U004"
ENG = {f"eng{i}@example.com": f"U10{i}" for i in range(1, 7)}
SLACK_IDS = {COMMS.email: CASEY, APPROVER.email: AVERY, ENG_LEAD.email: ERIN,
             "sam.admin@example.com": SAM, **ENG,
             **{f"sales{i}@example.com": f"U20{i}" for i in range(1, 5)},
             "gone1@example.com": "U301"}


def identities() -> dict[str, dict[str, str]]:
    return {email: {"slack": uid} for email, uid in SLACK_IDS.items()}


def sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    """Slack's request signature: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Shown:
    """What a person saw in answer to one request: ephemeral posts and replacements."""

    posts: list[dict[str, Any]]

    @property
    def text(self) -> str:
        return "\n".join(visible_text(p.get("blocks")) or p.get("text", "") for p in self.posts)

    @property
    def actions(self) -> list[str]:
        return [a for p in self.posts for a in action_ids(p.get("blocks"))]

    def holding(self, action: str) -> dict[str, Any]:
        for post in reversed(self.posts):
            if action in action_ids(post.get("blocks")):
                return post
        raise AssertionError(f"no answer has a button {action!r}: {self.text}")


@dataclass
class SlackChat:
    fake: FakeSlackAPI
    runtime: Runtime
    http: httpx.AsyncClient
    clock: ManualClock
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def bot(self) -> SlackBot:
        bot = self.runtime.extras["slack"]
        assert isinstance(bot, SlackBot)
        return bot

    # -- the wire ------------------------------------------------------------------

    async def post(self, body: str, content_type: str = "application/x-www-form-urlencoded", *,
                   timestamp: int | None = None, signature: str | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        """A request as Slack sends it, signed unless ``signature`` says otherwise."""
        stamp = int(time.time()) if timestamp is None else timestamp
        sent = {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(stamp),
                "X-Slack-Signature": signature if signature is not None else sign(body, stamp)}
        response = await self.http.post("/slack/events", content=body.encode(),
                                        headers=sent | (headers or {}))
        await self.bot.settle()
        return response

    def _hook(self) -> tuple[str, str]:
        name = f"r{next(self._ids)}"
        return name, self.fake.hook_url(name)

    def shown(self, name: str) -> Shown:
        return Shown(self.fake.hook_posts(name))

    # -- what people do ------------------------------------------------------------

    async def command(self, user: str, command: str, text: str = "",
                      channel: str = "C0GENERAL") -> Shown:
        """``user`` types ``command text`` in ``channel``; returns the ephemeral answers."""
        name, url = self._hook()
        form = {"token": "legacy", "team_id": TEAM, "channel_id": channel, "user_id": user,
                "user_name": user.lower(), "command": command, "text": text,
                "response_url": url, "trigger_id": f"trigger-{name}", "api_app_id": "A0CRIER"}
        response = await self.post(urlencode(form))
        assert response.status_code == 200, response.text
        return self.shown(name)

    def _action_payload(self, user: str, action: str, container: dict[str, Any],
                        extra: dict[str, Any]) -> dict[str, Any]:
        name, url = self._hook()
        return {
            "type": "block_actions", "team": {"id": TEAM}, "user": {"id": user},
            "api_app_id": "A0CRIER", "trigger_id": f"trigger-{name}", "container": container,
            "response_url": url,
            "actions": [{"type": "button", "action_id": action, "block_id": "b",
                         "value": action, "action_ts": f"{time.time():.6f}"}],
            **extra,
        }

    async def click(self, user: str, action: str, message: Message | None = None, *,
                    action_ts: float | None = None) -> Shown:
        """Press the button ``action`` on ``message`` (default: the latest DM holding it)."""
        held = message or self.fake.holding(user, action)
        assert action in held.actions, f"{action!r} is not a button of that message"
        container = {"type": "message", "message_ts": held.ts, "channel_id": held.channel,
                     "is_ephemeral": False}
        payload = self._action_payload(user, action, container, {
            "channel": {"id": held.channel}, "message": {"ts": held.ts, "blocks": held.blocks}})
        if action_ts is not None:
            payload["actions"][0]["action_ts"] = f"{action_ts:.6f}"
        return await self._send_payload(payload)

    async def click_ephemeral(self, user: str, action: str, shown: Shown,
                              channel: str = "C0GENERAL") -> Shown:
        """Press a button on an ephemeral answer (a preview): Slack gives a response_url."""
        shown.holding(action)
        container = {"type": "message", "message_ts": "1700000000.000001", "channel_id": channel,
                     "is_ephemeral": True}
        payload = self._action_payload(user, action, container, {"channel": {"id": channel}})
        return await self._send_payload(payload)

    async def click_home(self, user: str, action: str) -> Shown:
        view = self.fake.homes[user]
        assert action in action_ids(view["blocks"]), f"the App Home has no {action!r}"
        payload = self._action_payload(user, action, {"type": "view", "view_id": view["id"]},
                                       {"view": view})
        del payload["response_url"]  # App Home clicks come without one
        response = await self.post(urlencode({"payload": json.dumps(payload)}))
        assert response.status_code == 200, response.text
        return Shown([])

    async def _send_payload(self, payload: dict[str, Any]) -> Shown:
        response = await self.post(urlencode({"payload": json.dumps(payload)}))
        assert response.status_code == 200, response.text
        return self.shown(payload["response_url"].rsplit("/", 1)[1])

    async def submit(self, user: str, view: dict[str, Any],
                     values: dict[str, Any]) -> httpx.Response:
        """Submit an opened modal with ``values`` as Slack's ``view.state.values``."""
        payload = {"type": "view_submission", "team": {"id": TEAM}, "user": {"id": user},
                   "api_app_id": "A0CRIER", "trigger_id": "trigger-view",
                   "view": {**view, "state": {"values": values}}}
        return await self.post(urlencode({"payload": json.dumps(payload)}))

    async def event(self, event: dict[str, Any], event_id: str,
                    retry: int | None = None) -> httpx.Response:
        body = json.dumps({"token": "legacy", "team_id": TEAM, "api_app_id": "A0CRIER",
                           "type": "event_callback", "event_id": event_id,
                           "event_time": int(time.time()), "event": event})
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} \
            if retry else None
        return await self.post(body, "application/json", headers=headers)

    async def deliver(self) -> int:
        """What the running server's delivery workers would do next: send everything due."""
        return await self.runtime.engine.drain()

    def dm(self, user: str) -> list[Message]:
        return self.fake.messages(dm(user))


def form_values(**fields: Any) -> dict[str, Any]:
    """``view.state.values`` for the drafting form, from plain Python values."""
    values: dict[str, Any] = {}
    for block, value in fields.items():
        state: dict[str, Any]
        if block in ("audience", "options"):
            state = {"type": "multi_static_select" if block == "audience" else "checkboxes",
                     "selected_options": [{"value": v} for v in value]}
        elif block == "schedule":
            state = {"type": "datetimepicker", "selected_date_time": value}
        elif block in ("nudge", "category", "escalate"):
            state = {"type": "static_select", "selected_option": {"value": value}}
        else:
            state = {"type": "plain_text_input", "value": value}
        values[block] = {"value": state}
    return values


@asynccontextmanager
async def slack_chat(db: Database, clock: ManualClock, fake: FakeSlackAPI, *,
                     paced: bool = False, **settings: Any) -> AsyncIterator[SlackChat]:
    """Crier with Slack on ``fake``, its server app reached in-process.

    Unless ``paced``, the engine does not hold to Slack's 1 message/s per
    conversation (a real-time wait; pacing is the delivery engine's own subject).
    """
    config = Settings(database_url=str(db.url), slack_bot_token=fake.token,
                      slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.url, **settings)
    platform = make_platform(config)
    if not paced:
        platform.limits = RateLimits(0, 0)
    runtime = build(config, {"slack": platform}, clock=clock, db=db)
    app = create_app(runtime, [plugin(runtime)], run_workers=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://crier.test") as http:
        chat = SlackChat(fake, runtime, http, clock)
        try:
            yield chat
        finally:
            await chat.bot.aclose()
            await platform.aclose()
