"""A fake of Slack's Socket Mode: the fake Web API plus its WebSocket side.

``apps.connections.open`` (with the app-level token, as Slack requires) answers a
``ws://127.0.0.1:PORT/link/…`` URL on the same server; a client that connects gets
Slack's ``hello``, then the envelopes a test sends. ``send`` waits until the client
acknowledges the envelope with its ``envelope_id`` and returns that acknowledgement.

    with FakeSlackSocket() as slack:
        ack = slack.send("slash_commands", {...form fields...})
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.slack_api import FakeSlackAPI, SlackError

APP_TOKEN = "xapp-1-A0CRIER-1234-socketsecret"


class FakeSlackSocket(FakeSlackAPI):
    label = "fake Slack Socket Mode"

    def __init__(self, app_token: str = APP_TOKEN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_token = app_token
        #: Every message a client sent on a socket (acknowledgements), in order.
        self.received: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self.connections = 0
        self._sockets: list[web.WebSocketResponse] = []
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._envelopes = 0

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get("/link/", self._socket)

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    # -- the Web API side ---------------------------------------------------------

    def _authorize(self, request: web.Request, params: dict[str, Any]) -> None:
        if request.match_info["method"] != "apps.connections.open":
            super()._authorize(request, params)
            return
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        if token == self.token:
            raise SlackError("not_allowed_token_type")
        if token != self.app_token:
            raise SlackError("invalid_auth")

    def _m_apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self.port}/link/?ticket={self._id('ticket')}"}

    # -- the WebSocket side ---------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()  # answers the client's pings
        await ws.prepare(request)
        self._sockets.append(ws)
        self.connections += 1
        await ws.send_json({"type": "hello", "num_connections": len(self._sockets),
                            "debug_info": {"host": "fake-slack"},
                            "connection_info": {"app_id": "A0CRIER"}})
        self.connected.set()
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                self.received.append(data)
                waiter = self._waiting.pop(str(data.get("envelope_id")), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(data)
        finally:
            self._sockets.remove(ws)
            if not self._sockets:
                self.connected.clear()
        return ws

    def send(self, kind: str, payload: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send an envelope (``slash_commands``, ``interactive``, ``events_api``) on the
        newest socket; return the client's acknowledgement (AssertionError if none)."""
        assert self._loop is not None, "the fake is not running"
        self._envelopes += 1
        envelope_id = f"env-{self._envelopes:04d}"

        async def go() -> dict[str, Any]:
            assert self._sockets, "no client is connected"
            waiter = asyncio.get_running_loop().create_future()
            self._waiting[envelope_id] = waiter
            await self._sockets[-1].send_json({
                "envelope_id": envelope_id, "type": kind, "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0, "retry_reason": ""})
            try:
                return await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                raise AssertionError(f"envelope {envelope_id} ({kind}) was not "
                                     "acknowledged") from None

        ack = asyncio.run_coroutine_threadsafe(go(), self._loop).result(timeout + 5)
        ack["sent_envelope_id"] = envelope_id
        return ack
