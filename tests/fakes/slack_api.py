"""A fake Slack Web API: a real HTTP server on 127.0.0.1 (port 0) in its own thread.

It answers the methods Crier uses under ``/api/<method>``, ``response_url``
posts under ``/hooks/<name>`` and file uploads under ``/upload/<file_id>``. It
checks the bot token and Block Kit as Slack does, records every request body
(form, query or JSON, parsed; a benchmark's fake, ``keep_bodies=False``, keeps no
bodies and skips the Block Kit check) and keeps each conversation's messages as a
person would see them. Failures can be injected: 429 with Retry-After, 5xx,
Slack error codes once or for a given user (``account_inactive``), and a
simulated posting limit that answers 429 like Slack.

    with FakeSlackAPI() as slack:
        settings = Settings(slack_bot_token=slack.token, slack_signing_secret=SIGNING_SECRET,
                            slack_api_url=slack.url)

It also works as an async context manager (``async with``), and from a benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer
from tests.fakes.slack_blocks import (
    MESSAGE_TEXT,
    action_ids,
    check_blocks,
    check_view,
    visible_text,
)

TOKEN = "xoxb-0000-crier-test"
SIGNING_SECRET = "f4k3-s1gn1ng-s3cr3t-for-tests"
TEAM = "T0CRIER"
BOT_USER = "U0CRIERBOT"
JSON_FIELDS = frozenset({"blocks", "view", "attachments", "files", "metadata"})


class SlackError(Exception):
    def __init__(self, error: str, status: int = 200, retry_after: int | None = None,
                 **extra: Any) -> None:
        super().__init__(error)
        self.error, self.status, self.retry_after, self.extra = error, status, retry_after, extra


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    error: str | None = None


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    updates: int = 0
    deleted: bool = False

    @property
    def actions(self) -> list[str]:
        return action_ids(self.blocks)

    @property
    def visible(self) -> str:
        """What the person reads (blocks, or the text when there are none)."""
        return visible_text(self.blocks) if self.blocks else self.text


@dataclass
class Failure:
    method: str | None
    error: str
    status: int = 200
    retry_after: int | None = None
    times: int = 1
    channel: str | None = None


@dataclass
class Limit:
    """Slack's posting limit as a token bucket per workspace plus a gap per channel."""

    per_second: float | None = None
    per_channel: float | None = None
    burst: int = 1
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)
    channel_next: dict[str, float] = field(default_factory=dict)


def dm(user: str) -> str:
    """The id of the app's direct-message channel with ``user``."""
    return "D" + user[1:] if user.startswith(("U", "W")) else user


class FakeSlackAPI(ThreadedServer):
    def __init__(self, token: str = TOKEN, *, keep_bodies: bool = True, seed: int = 7) -> None:
        self.token = token
        self.keep_bodies = keep_bodies
        self.port = 0
        self.calls: list[Call] = []
        self.conversations: dict[str, list[Message]] = {}
        self.hooks: list[tuple[str, dict[str, Any]]] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.homes: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.users: list[dict[str, Any]] = []
        self.profile_fields: list[dict[str, Any]] = []
        self.failures: list[Failure] = []
        self.unreachable: dict[str, str] = {}
        self.limit = Limit()
        self.chaos_429 = self.chaos_5xx = 0.0
        self.chaos_retry_after = 1
        self.chaos_every = 0.0
        self._next_periodic = 0.0
        #: When each conversation was first posted to (retries come later).
        self.first_tries: dict[str, float] = {}
        self.rate_limited = 0
        #: Requests that arrived while a Retry-After this fake gave was still running,
        #: not counting those that were already on their way (``in_flight_grace`` seconds).
        self.early_requests = 0
        self.in_flight_grace = 0.1
        self._blocked_since = 0.0
        self._blocked_until = 0.0
        self._random = random.Random(seed)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def hook_url(self, name: str) -> str:
        """A ``response_url`` that lands in ``hooks`` under ``name``."""
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    label = "fake Slack API"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/hooks/{name}", self._hook)
        app.router.add_post("/upload/{file_id}", self._upload)

    # -- set-up ------------------------------------------------------------------

    def add_user(self, user_id: str, email: str | None, name: str, *, tz: str = "UTC",
                 title: str = "", fields: dict[str, str] | None = None, deleted: bool = False,
                 bot: bool = False, guest: bool = False) -> dict[str, Any]:
        """A workspace member; ``fields`` are custom profile fields by label."""
        profile: dict[str, Any] = {"real_name": name, "display_name": name.split()[0],
                                   "title": title}
        if email:
            profile["email"] = email
        custom = {}
        for label, value in (fields or {}).items():
            custom[self.profile_field(label)] = {"value": value, "alt": ""}
        user = {"id": user_id, "team_id": TEAM, "name": name.lower().replace(" ", "."),
                "real_name": name, "deleted": deleted, "is_bot": bot, "tz": tz,
                "is_restricted": guest, "is_ultra_restricted": False, "profile": profile,
                "_fields": custom}
        self.users.append(user)
        return user

    def profile_field(self, label: str) -> str:
        """The id of the workspace's custom profile field ``label`` (created if new)."""
        for f in self.profile_fields:
            if f["label"] == label:
                return str(f["id"])
        field_id = f"Xf{len(self.profile_fields) + 1:08d}"
        self.profile_fields.append({"id": field_id, "label": label, "type": "text"})
        return field_id

    def fail(self, method: str | None, error: str = "internal_error", *, status: int = 200,
             retry_after: int | None = None, times: int = 1, channel: str | None = None) -> None:
        """The next ``times`` calls of ``method`` (to ``channel``) fail this way."""
        if status == 429 and retry_after is None:
            retry_after = 1
        self.failures.append(Failure(method, error, status, retry_after, times, channel))

    def make_unreachable(self, user_or_channel: str, error: str = "account_inactive") -> None:
        """Every message to this user or channel is refused with ``error``."""
        self.unreachable[user_or_channel] = error
        self.unreachable[dm(user_or_channel)] = error

    def set_limit(self, per_second: float | None = None, per_channel: float | None = 1.0,
                  burst: int = 1) -> None:
        """Answer chat.postMessage with 429 beyond these rates, as Slack does."""
        self.limit = Limit(per_second, per_channel, burst, tokens=float(burst))

    def chaos(self, p429: float = 0.0, p5xx: float = 0.0, retry_after: int = 1,
              every: float = 0.0) -> None:
        """Fail this share of chat.postMessage calls at random (seeded); with ``every``,
        also answer the first post after each ``every`` seconds with 429."""
        self.chaos_429, self.chaos_5xx, self.chaos_retry_after = p429, p5xx, retry_after
        self.chaos_every = every
        self._next_periodic = time.monotonic() + every

    # -- what was sent -------------------------------------------------------------

    def requests(self, method: str | None = None) -> list[Call]:
        return [c for c in list(self.calls) if method is None or c.method == method]

    def messages(self, user_or_channel: str, *, include_deleted: bool = False) -> list[Message]:
        return [m for m in self.conversations.get(dm(user_or_channel), [])
                if include_deleted or not m.deleted]

    def last(self, user_or_channel: str) -> Message:
        found = self.messages(user_or_channel)
        assert found, f"nothing was posted to {user_or_channel}"
        return found[-1]

    def holding(self, user_or_channel: str, action: str) -> Message:
        """The latest message to ``user_or_channel`` with a button for ``action``."""
        for message in reversed(self.messages(user_or_channel)):
            if action in message.actions:
                return message
        raise AssertionError(f"no message to {user_or_channel} has a button {action!r}")

    def hook_posts(self, name: str | None = None) -> list[dict[str, Any]]:
        return [body for n, body in list(self.hooks) if name is None or n == name]

    def opened_views(self) -> list[dict[str, Any]]:
        return [c.params["view"] for c in self.requests("views.open")
                if c.error is None and "view" in c.params]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.conversations.clear()
            self.hooks.clear()
            self.failures.clear()
            self.first_tries.clear()
            self.early_requests = self.rate_limited = 0
            self._blocked_since = self._blocked_until = 0.0

    # -- HTTP --------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read(request)
        call = Call(method, params if self.keep_bodies else {}, time.monotonic())
        self.calls.append(call)
        try:
            self._authorize(request, params)
            self._inject(method, params)
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                raise SlackError("unknown_method", status=404)
            data = handler(params)
        except SlackError as exc:
            call.error = exc.error
            return _error(exc)
        return web.json_response({"ok": True, **data})

    def _authorize(self, request: web.Request, params: dict[str, Any]) -> None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header else params.get("token")
        if not token:
            raise SlackError("not_authed")
        if token != self.token:
            raise SlackError("invalid_auth")

    def _inject(self, method: str, params: dict[str, Any]) -> None:
        now = time.monotonic()
        if self._blocked_since + self.in_flight_grace < now < self._blocked_until:
            self.early_requests += 1
        channel = str(params.get("channel") or "")
        for failure in self.failures:
            if failure.times > 0 and failure.method in (None, method) and (
                    failure.channel is None or dm(failure.channel) == dm(channel)):
                failure.times -= 1
                self._note_429(failure.status, failure.retry_after)
                raise SlackError(failure.error, failure.status, failure.retry_after)
        if method != "chat.postMessage":
            return
        self.first_tries.setdefault(dm(channel), now)
        if self.chaos_every and now >= self._next_periodic:
            self._next_periodic = now + self.chaos_every
            self._note_429(429, self.chaos_retry_after)
            raise SlackError("ratelimited", 429, self.chaos_retry_after)
        if self.chaos_429 or self.chaos_5xx:
            roll = self._random.random()
            if roll < self.chaos_429:
                self._note_429(429, self.chaos_retry_after)
                raise SlackError("ratelimited", 429, self.chaos_retry_after)
            if roll < self.chaos_429 + self.chaos_5xx:
                raise SlackError("service_unavailable", 503)
        self._enforce_limit(dm(channel), now)

    def _enforce_limit(self, channel: str, now: float) -> None:
        lim = self.limit
        with self._lock:
            if lim.per_channel and now < lim.channel_next.get(channel, 0.0):
                wait = lim.channel_next[channel] - now
                self._note_429(429, max(1, math.ceil(wait)))
                raise SlackError("ratelimited", 429, max(1, math.ceil(wait)))
            if lim.per_second:
                lim.tokens = min(float(lim.burst), lim.tokens + (now - lim.stamp) * lim.per_second)
                lim.stamp = now
                if lim.tokens < 1.0:
                    wait = max(1, math.ceil((1.0 - lim.tokens) / lim.per_second))
                    self._note_429(429, wait)
                    raise SlackError("ratelimited", 429, wait)
                lim.tokens -= 1.0
            if lim.per_channel:
                lim.channel_next[channel] = now + 1.0 / lim.per_channel

    def _note_429(self, status: int, retry_after: int | None) -> None:
        if status == 429:
            now = time.monotonic()
            self.rate_limited += 1
            if now >= self._blocked_until:
                self._blocked_since = now
            self._blocked_until = max(self._blocked_until, now + (retry_after or 1))

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        problems = check_blocks(body["blocks"]) if "blocks" in body else []
        if problems:
            return web.Response(status=400, text="invalid_blocks")
        self.hooks.append((request.match_info["name"], body))
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self.uploads:
            return web.Response(status=404, text="not found", content_type="text/plain")
        data = await request.read()
        self.uploads[file_id]["content"] = data
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    # -- methods -----------------------------------------------------------------

    def _ts(self) -> str:
        n = next(self._ids)
        return f"{1_700_000_000 + n}.{n:06d}"

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def _check_message(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        text = str(params.get("text") or "")
        blocks = params.get("blocks") or []
        if not text and not blocks:
            raise SlackError("no_text")
        if len(text) > MESSAGE_TEXT:
            raise SlackError("msg_too_long")
        if not self.keep_bodies:  # a benchmark's fake: answer fast, keep nothing
            return text, []
        problems = check_blocks(blocks)
        if problems:
            raise SlackError("invalid_blocks", errors=problems)
        return text, blocks

    def _conversation(self, params: dict[str, Any]) -> str:
        channel = str(params.get("channel") or "")
        if not channel:
            raise SlackError("channel_not_found")
        if channel in self.unreachable:
            raise SlackError(self.unreachable[channel])
        return dm(channel)

    def _find(self, params: dict[str, Any]) -> Message:
        channel = self._conversation(params)
        for message in self.conversations.get(channel, []):
            if message.ts == params.get("ts") and not message.deleted:
                return message
        raise SlackError("message_not_found")

    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"url": "https://crier-test.slack.com/", "team": "Crier Test", "user": "crier",
                "team_id": TEAM, "user_id": BOT_USER, "bot_id": "B0CRIER"}

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(p)
        text, blocks = self._check_message(p)
        message = Message(channel, self._ts(), text, blocks)
        with self._lock:
            self.conversations.setdefault(channel, []).append(message)
        return {"channel": channel, "ts": message.ts,
                "message": {"text": text, "blocks": blocks, "ts": message.ts}}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        message = self._find(p)
        message.text, message.blocks = self._check_message(p)
        message.updates += 1
        return {"channel": message.channel, "ts": message.ts, "text": message.text}

    def _m_chat_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        message = self._find(p)
        message.deleted = True
        return {"channel": message.channel, "ts": message.ts}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        self._conversation(p)
        if not p.get("user"):
            raise SlackError("user_not_found")
        self._check_message(p)
        return {"message_ts": self._ts()}

    def _m_conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        user = str(p.get("users") or "").split(",")[0]
        if not user or user in self.unreachable:
            raise SlackError(self.unreachable.get(user, "user_not_found"))
        return {"channel": {"id": dm(user)}}

    def _m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("trigger_id"):
            raise SlackError("invalid_trigger_id")
        return {"view": self._store_view(p.get("view"))}

    def _m_views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("view_id") not in self.views:
            raise SlackError("not_found")
        return {"view": self._store_view(p.get("view"), str(p["view_id"]))}

    def _m_views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        user = str(p.get("user_id") or "")
        if not user:
            raise SlackError("invalid_arguments")
        view = self._store_view(p.get("view"))
        self.homes[user] = view
        return {"view": view}

    def _store_view(self, view: Any, view_id: str | None = None) -> dict[str, Any]:
        problems = check_view(view)
        if problems:
            raise SlackError("invalid_arguments", response_metadata={"messages": problems})
        stored = {**view, "id": view_id or self._id("V"), "hash": self._id("h")}
        self.views[stored["id"]] = stored
        return stored

    def _public_user(self, user: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in user.items() if not k.startswith("_")}

    def _m_users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        limit = max(1, min(int(p.get("limit") or 100), 1000))
        start = int(p.get("cursor") or 0)
        page = self.users[start:start + limit]
        more = start + limit < len(self.users)
        return {"members": [self._public_user(u) for u in page],
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _user(self, p: dict[str, Any]) -> dict[str, Any]:
        found = next((u for u in self.users if u["id"] == p.get("user")), None)
        if found is None:
            raise SlackError("user_not_found")
        return found

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"user": self._public_user(self._user(p))}

    def _m_users_profile_get(self, p: dict[str, Any]) -> dict[str, Any]:
        user = self._user(p)
        return {"profile": {**user["profile"], "fields": user["_fields"]}}

    def _m_team_profile_get(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"profile": {"fields": list(self.profile_fields)}}

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("filename") or not str(p.get("length") or "").isdigit():
            raise SlackError("invalid_arguments")
        file_id = self._id("F")
        self.uploads[file_id] = {"filename": p["filename"], "length": int(p["length"])}
        return {"upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}",
                "file_id": file_id}

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        files = p.get("files") or []
        for f in files:
            upload = self.uploads.get(f.get("id"))
            if upload is None or "content" not in upload:
                raise SlackError("file_not_found")
            upload.update(title=f.get("title"), channel=p.get("channel_id"),
                          initial_comment=p.get("initial_comment"))
        if p.get("channel_id"):
            self._conversation({"channel": p["channel_id"]})
        return {"files": [{"id": f["id"], "title": f.get("title")} for f in files]}


async def _read(request: web.Request) -> dict[str, Any]:
    """The request's parameters, whichever way the client sent them."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        params.update(await request.json())
    elif request.can_read_body:
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    for key in JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(params[key])
    return params


def _error(exc: SlackError) -> web.Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    if exc.status >= 500:
        return web.Response(status=exc.status, text="<html>upstream error</html>",
                            content_type="text/html", headers=headers)
    return web.json_response({"ok": False, "error": exc.error, **exc.extra},
                             status=exc.status, headers=headers)
