"""A lean fake Slack Web API for throughput benchmarks: HTTP/1.1 on ``asyncio.Protocol``.

The tests' fake (``tests.fakes.slack_api``, on aiohttp) costs about 120 µs of CPU a
request: at 2,000 messages a second that is a quarter of one of the machine's two
cores, taken from the worker processes a benchmark measures. On a real deployment
that work happens on Slack's servers, so this fake keeps it small (a few tens of µs):
it answers only what a delivery worker asks (``auth.test``, ``conversations.open``,
``chat.postMessage``, ``chat.update``, ``chat.delete``), checks the bot token, keeps
no bodies, and counts each conversation's copies of the broadcast (duplicates). No
rate limit, no injected failures: those scenarios use the full fake.

    server = LeanSlack().start()          # a thread of its own, 127.0.0.1, port 0
    ... server.url ... server.stats() ... server.stop()
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.server import ThreadedServer

TOKEN = "xoxb-0000-crier-test"
MARKER = "Bench broadcast"
HEAD_END = b"\r\n\r\n"
MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024


def dm(user: str) -> str:
    return "D" + user[1:] if user.startswith(("U", "W")) else user


class LeanSlack(ThreadedServer):
    """Started and stopped like the tests' fakes (``stop``, context manager), but served
    by ``_Connection`` instead of aiohttp."""

    label = "lean fake Slack"

    def __init__(self, token: str = TOKEN, marker: str = MARKER) -> None:
        self.token, self.marker = token, marker
        self.port = 0
        self.posts = self.ok = self.requests = 0
        #: Copies of the broadcast per conversation.
        self.copies: dict[str, int] = {}
        self.first_ok = self.last_ok = 0.0
        self._ids = itertools.count(1)
        self._server: asyncio.Server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def open(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), sock=sock,
                                                backlog=self.backlog)

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    def reset(self) -> None:
        self.posts = self.ok = self.requests = 0
        self.copies.clear()
        self.first_ok = self.last_ok = 0.0

    def stats(self) -> dict[str, Any]:
        """The same figures as ``bench.harness.fake_stats`` where they apply."""
        copies = list(self.copies.values())
        return {"posts": self.posts, "ok": self.ok, "rate_limited": 0, "server_errors": 0,
                "early_requests": 0, "people": sum(1 for n in copies if n),
                "duplicates": sum(n - 1 for n in copies if n > 1),
                "first_ok": self.first_ok, "last_ok": self.last_ok,
                "last_first_try": self.last_ok, "ok_by_last_first_try": self.ok}

    # -- the API -------------------------------------------------------------------

    def answer(self, method: str, headers: dict[str, str], body: bytes,
               query: str) -> tuple[int, dict[str, Any]]:
        self.requests += 1
        params: dict[str, Any] = dict(parse_qsl(query)) if query else {}
        kind = headers.get("content-type", "")
        try:
            if kind.startswith("application/json"):
                params.update(json.loads(body or b"{}"))
            elif body:
                params.update(parse_qsl(body.decode(), keep_blank_values=True))
        except (ValueError, UnicodeDecodeError):
            return 400, {"ok": False, "error": "invalid_form_data"}
        token = headers.get("authorization", "").removeprefix("Bearer ").strip() \
            or params.get("token")
        if not token:
            return 200, {"ok": False, "error": "not_authed"}
        if token != self.token:
            return 200, {"ok": False, "error": "invalid_auth"}
        if method == "chat.postMessage":
            self.posts += 1
            channel = dm(str(params.get("channel") or ""))
            text = str(params.get("text") or "")
            if channel == "":
                return 200, {"ok": False, "error": "channel_not_found"}
            if not text and not params.get("blocks"):
                return 200, {"ok": False, "error": "no_text"}
            now = time.monotonic()
            self.ok += 1
            self.first_ok = self.first_ok or now
            self.last_ok = now
            if self.marker in text:
                self.copies[channel] = self.copies.get(channel, 0) + 1
            return 200, {"ok": True, "channel": channel, "ts": self._ts()}
        if method in ("chat.update", "chat.delete"):
            return 200, {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}
        if method == "conversations.open":
            user = str(params.get("users") or "").split(",")[0]
            if not user:
                return 200, {"ok": False, "error": "user_not_found"}
            return 200, {"ok": True, "channel": {"id": dm(user)}}
        if method == "auth.test":
            return 200, {"ok": True, "url": "https://crier-bench.slack.com/", "team": "Bench",
                         "user": "crier", "team_id": "T0CRIER", "user_id": "U0CRIERBOT",
                         "bot_id": "B0CRIER"}
        return 404, {"ok": False, "error": "unknown_method"}

    def _ts(self) -> str:
        n = next(self._ids)
        return f"{1_700_000_000 + n}.{n:06d}"


class _Connection(asyncio.Protocol):
    """One keep-alive connection: requests with a Content-Length body, answered in order."""

    def __init__(self, api: LeanSlack) -> None:
        self.api = api
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(HEAD_END)
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._reply(431, {"ok": False, "error": "headers_too_large"}, close=True)
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if len(parts) != 3 or "transfer-encoding" in headers:
                self._reply(400, {"ok": False, "error": "bad_request"}, close=True)
                return
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self._reply(400, {"ok": False, "error": "bad_content_length"}, close=True)
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            path, _, query = parts[1].partition("?")
            method = path.rsplit("/", 1)[-1] if path.startswith("/api/") else ""
            status, answer = self.api.answer(method, headers, body, query)
            self._reply(status, answer, close=headers.get("connection", "").lower() == "close")

    def _reply(self, status: int, answer: dict[str, Any], *, close: bool) -> None:
        assert self.transport is not None
        payload = json.dumps(answer).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found",
                  431: "Request Header Fields Too Large"}[status]
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
            b"Content-Length: %d\r\n%s\r\n" % (
                status, reason.encode(), len(payload), b"Connection: close\r\n" if close else b"")
            + payload)
        if close:
            self.transport.close()
            self.transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
