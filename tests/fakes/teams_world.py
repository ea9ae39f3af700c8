"""Crier's server with the Teams plugin, talking to the fake identity and connector.

Activities are POSTed to ``/api/messages`` exactly as the Bot Framework posts
them (JSON body, a signed bearer token), in-process through httpx's ASGI
transport; what the bot sends is read back from the fake connector.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from announcements.clock import ManualClock
from bot.app import Runtime, build
from bot.server import create_app
from bot.settings import Settings
from bot.teams import TeamsServer, make_platform, plugin
from storage.db import Database
from tests.fakes.teams_connector import CARD, Activity, FakeConnector
from tests.fakes.teams_identity import APP_ID, PASSWORD, TENANT, FakeIdentity


def aad(email: str) -> str:
    """A stable Entra object id for a test person."""
    number = sum(ord(c) * (i + 1) for i, c in enumerate(email)) % 10**12
    return f"00000000-0000-4000-8000-{number:012d}"


def settings_for(identity: FakeIdentity, db: Database | None = None, **overrides: Any
                 ) -> Settings:
    values: dict[str, Any] = {
        "database_url": db.url.render_as_string(hide_password=False) if db else "sqlite://",
        "teams_app_id": APP_ID, "teams_app_password": PASSWORD, "teams_tenant_id": TENANT,
        "teams_token_url": identity.token_url,
        "teams_openid_metadata_url": identity.metadata_url,
        "working_hours": "off",
    }
    values.update(overrides)
    return Settings(**values)


class TeamsWorld:
    def __init__(self, identity: FakeIdentity, connector: FakeConnector, runtime: Runtime,
                 http: httpx.AsyncClient) -> None:
        self.identity = identity
        self.connector = connector
        self.runtime = runtime
        self.http = http
        self._ids = itertools.count(1)

    @property
    def server(self) -> TeamsServer:
        server = self.runtime.extras["teams"]
        assert isinstance(server, TeamsServer)
        return server

    # -- the wire ----------------------------------------------------------------------

    @staticmethod
    def conversation(email: str) -> str:
        return f"a:personal-{aad(email)}"

    def activity(self, email: str, kind: str, **fields: Any) -> dict[str, Any]:
        user = aad(email)
        return {
            "type": kind, "id": f"act-{next(self._ids)}", "channelId": "msteams",
            "serviceUrl": self.connector.service_url,
            "from": {"id": f"29:{user}", "aadObjectId": user, "name": email},
            "recipient": {"id": f"28:{APP_ID}", "name": "Crier"},
            "conversation": {"id": self.conversation(email), "conversationType": "personal",
                             "tenantId": TENANT},
            "channelData": {"tenant": {"id": TENANT}},
            **fields,
        }

    async def post(self, activity: dict[str, Any], token: str | None = None, *,
                   authorization: str | None = None) -> httpx.Response:
        if authorization is None:
            token = token or self.identity.mint(str(activity.get("serviceUrl")))
            authorization = f"Bearer {token}"
        return await self.http.post("/api/messages", json=activity,
                                    headers={"Authorization": authorization} if authorization
                                    else {})

    # -- what people do ------------------------------------------------------------------

    def join(self, email: str) -> None:
        """The tenant knows ``email``: the connector can describe them as a member."""
        user = aad(email)
        self.connector.members[(self.conversation(email), f"29:{user}")] = {
            "id": f"29:{user}", "aadObjectId": user, "email": email,
            "userPrincipalName": email, "name": email}

    async def install(self, email: str) -> httpx.Response:
        self.join(email)
        return await self.post(self.activity(email, "installationUpdate", action="add"))

    def chat(self, email: str) -> list[Activity]:
        return self.connector.chat(self.conversation(email))

    async def say(self, email: str, text: str) -> list[Activity]:
        """``email`` types ``text``; the activities the bot posted in answer."""
        before = len(self.chat(email))
        response = await self.post(self.activity(email, "message", text=text))
        assert response.status_code == 200, response.text
        return self.chat(email)[before:]

    def holding(self, email: str, action: str) -> Activity:
        for activity in reversed(self.chat(email)):
            if action in activity.actions:
                return activity
        raise AssertionError(f"{email} holds no card with {action!r}: "
                             f"{[a.text for a in self.chat(email)]}")

    async def click(self, email: str, action: str, *, activity: Activity | None = None,
                    **inputs: Any) -> tuple[dict[str, Any], list[Activity]]:
        """``Action.Execute`` on the newest card holding ``action``: the invoke response
        body and the activities posted meanwhile."""
        held = activity or self.holding(email, action)
        before = len(self.chat(email))
        invoke = self.activity(email, "invoke", name="adaptiveCard/action", replyToId=held.id,
                               value={"action": {"type": "Action.Execute", "verb": action,
                                                 "data": {"action": action, **inputs}}})
        response = await self.post(invoke)
        assert response.status_code == 200, response.text
        answer = response.json()
        if answer.get("type") == CARD:  # the Teams client shows the refreshed card in place
            held.history.append(held.body)
            held.body = {**held.body, "attachments": [{"contentType": CARD,
                                                       "content": answer["value"]}]}
            held.edits += 1
        return answer, self.chat(email)[before:]

    async def submit(self, email: str, action: str, **inputs: Any) -> list[Activity]:
        """The ``Action.Submit`` fallback: a message activity carrying the card's data."""
        held = self.holding(email, action)
        before = len(self.chat(email))
        message = self.activity(email, "message", replyToId=held.id,
                                value={"action": action, **inputs})
        response = await self.post(message)
        assert response.status_code == 200, response.text
        return self.chat(email)[before:]

    async def deliver(self) -> int:
        return await self.runtime.engine.drain()


@asynccontextmanager
async def teams_world(db: Database, clock: ManualClock, *, per_conversation: float = 7.0,
                      **settings: Any) -> AsyncIterator[TeamsWorld]:
    async with FakeIdentity() as identity, \
            FakeConnector(identity, per_conversation=per_conversation) as connector:
        config = settings_for(identity, db, **settings)
        platform = make_platform(config)
        runtime = build(config, {"teams": platform}, clock=clock, db=db)
        app = create_app(runtime, [plugin(runtime)], run_workers=False)
        server = runtime.extras["teams"]
        assert isinstance(server, TeamsServer)
        await server.startup()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://crier.test") as http:
            try:
                yield TeamsWorld(identity, connector, runtime, http)
            finally:
                await platform.stop()
