"""A fake Bot Framework connector (Teams' side of proactive messaging): a real HTTP
server on 127.0.0.1 (port 0) under a regional path (``/amer/``).

It records every activity per conversation as a person would see it (cards,
edits, deletions), accepts only bearer tokens the fake identity issued for the
Bot Framework scope, refuses activities over 28 KB (413), enforces Teams'
per-conversation limit (``per_conversation`` requests per second, else 429 with
``Retry-After``), and injects failures on request (``fail``: 429, 412, 502 …).
``members`` answers the member lookup Crier makes for a user it does not know.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer
from tests.fakes.teams_identity import FakeIdentity

BOT_SCOPE = "https://api.botframework.com/.default"
CARD = "application/vnd.microsoft.card.adaptive"
MAX_BYTES = 28 * 1024


def card_text(content: dict[str, Any]) -> str:
    """What a person reads on a card: its text blocks and its buttons' titles."""
    lines: list[str] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if item.get("type") == "TextBlock":
                lines.append(str(item.get("text", "")).replace("**", "*"))
            walk(item.get("items", []))
    walk(content.get("body", []))
    lines += [f"[{a.get('title')}]" for a in content.get("actions", [])]
    return "\n".join(lines)


def card_actions(content: dict[str, Any]) -> list[str]:
    return [str(a.get("verb") or (a.get("data") or {}).get("action"))
            for a in content.get("actions", [])]


@dataclass
class Activity:
    id: str
    conversation: str
    body: dict[str, Any]
    deleted: bool = False
    edits: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def card(self) -> dict[str, Any]:
        for attachment in self.body.get("attachments") or []:
            if attachment.get("contentType") == CARD:
                return dict(attachment["content"])
        return {}

    @property
    def text(self) -> str:
        return card_text(self.card) if self.card else str(self.body.get("text", ""))

    @property
    def actions(self) -> list[str]:
        return card_actions(self.card) if self.card else []

    @property
    def summary(self) -> str:
        return str(self.body.get("summary", ""))


@dataclass
class Fault:
    status: int
    times: int = 1
    retry_after: float | None = None
    method: str | None = None


class FakeConnector(ThreadedServer):
    label = "fake Bot Framework connector"

    def __init__(self, identity: FakeIdentity, region: str = "amer",
                 per_conversation: float = 7.0, p429: float = 0.0) -> None:
        self.identity = identity
        self.region = region
        self.per_conversation = per_conversation
        #: Chance that a request is answered 429 (Retry-After 1 s) at random; while a
        #: Retry-After runs, requests that arrive anyway are counted in ``early``.
        self.p429 = p429
        self.early = 0
        self._closed_until = 0.0
        self._random = random.Random(7)
        self.conversations: dict[str, list[Activity]] = {}
        self.members: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.faults: list[Fault] = []
        self.throttled = 0
        self._recent: dict[str, deque[float]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.region}/"

    def fail(self, status: int, times: int = 1, retry_after: float | None = None,
             method: str | None = None) -> None:
        with self._lock:
            self.faults.append(Fault(status, times, retry_after, method))

    def chat(self, conversation: str) -> list[Activity]:
        with self._lock:
            return [a for a in self.conversations.get(conversation, []) if not a.deleted]

    def find(self, activity_id: str) -> Activity | None:
        with self._lock:
            for activities in self.conversations.values():
                for a in activities:
                    if a.id == activity_id:
                        return a
        return None

    # -- the server ----------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        base = f"/{self.region}/v3/conversations/{{conv}}"
        app.router.add_post(f"{base}/activities", self._post)
        app.router.add_put(f"{base}/activities/{{aid}}", self._put)
        app.router.add_delete(f"{base}/activities/{{aid}}", self._delete)
        app.router.add_get(f"{base}/members/{{user}}", self._member)

    def _gate(self, request: web.Request) -> web.Response | None:
        """Auth, injected faults and the per-conversation limit, as Teams applies them."""
        if not self.identity.valid(request.headers.get("Authorization"), BOT_SCOPE):
            return _error(401, "Unauthorized", "Authorization has been denied for this request.")
        conv = request.match_info["conv"]
        with self._lock:
            now = time.monotonic()
            if now < self._closed_until:
                self.early += 1
            if self.p429 and request.method != "GET" and self._random.random() < self.p429:
                self._closed_until = now + 1.0
                self.throttled += 1
                return _error(429, "TooManyRequests", "throttled", {"Retry-After": "1"})
            for fault in self.faults:
                if fault.times > 0 and fault.method in (None, request.method):
                    fault.times -= 1
                    headers = ({"Retry-After": f"{fault.retry_after:g}"}
                               if fault.retry_after is not None else {})
                    return _error(fault.status, "Injected", "injected failure", headers)
            if self.per_conversation and request.method != "GET":
                now = time.monotonic()
                recent = self._recent.setdefault(conv, deque())
                while recent and recent[0] <= now - 1.0:
                    recent.popleft()
                if len(recent) >= self.per_conversation:
                    self.throttled += 1
                    return _error(429, "TooManyRequests", "throttled",
                                  {"Retry-After": "1"})
                recent.append(now)
        return None

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        raw = await request.read()
        if len(raw) > MAX_BYTES:
            return _error(413, "MessageSizeTooBig", "Message size too big")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "BadSyntax", "not JSON")
        return body if isinstance(body, dict) else _error(400, "BadSyntax", "not an object")

    def _log(self, request: web.Request, status: int) -> None:
        with self._lock:
            self.requests.append((request.method, request.path, status))

    async def _post(self, request: web.Request) -> web.Response:
        refused = self._gate(request) or await self._body(request)
        if isinstance(refused, web.Response):
            self._log(request, refused.status)
            return refused
        conv = request.match_info["conv"]
        activity = Activity(f"1:{next(self._ids)}", conv, refused)
        with self._lock:
            self.conversations.setdefault(conv, []).append(activity)
        self._log(request, 201)
        return web.json_response({"id": activity.id}, status=201)

    async def _put(self, request: web.Request) -> web.Response:
        refused = self._gate(request) or await self._body(request)
        if isinstance(refused, web.Response):
            self._log(request, refused.status)
            return refused
        found = self.find(request.match_info["aid"])
        if found is None or found.deleted:
            self._log(request, 404)
            return _error(404, "ActivityNotFound", "Unknown activity")
        with self._lock:
            found.history.append(found.body)
            found.body = refused
            found.edits += 1
        self._log(request, 200)
        return web.json_response({"id": found.id})

    async def _delete(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused is not None:
            self._log(request, refused.status)
            return refused
        found = self.find(request.match_info["aid"])
        if found is None or found.deleted:
            self._log(request, 404)
            return _error(404, "ActivityNotFound", "Unknown activity")
        found.deleted = True
        self._log(request, 200)
        return web.Response(status=200)

    async def _member(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused is not None:
            return refused
        member = self.members.get((request.match_info["conv"], request.match_info["user"]))
        if member is None:
            return _error(404, "MemberNotFound", "The member was not found")
        return web.json_response(member)


def _error(status: int, code: str, message: str,
           headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers=headers)
