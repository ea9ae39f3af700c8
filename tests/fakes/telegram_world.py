"""Crier's server with the Telegram plugin, pointed at the fake Bot API.

Updates are POSTed to ``/telegram/webhook`` exactly as Telegram posts them
(JSON body, secret-token header), in-process through httpx's ASGI transport;
what the bot sends is read back from the fake's chats.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import fields
from typing import Any

import httpx

from announcements.clock import ManualClock
from announcements.delivery.throttle import Throttle
from announcements.linking import create_invite
from announcements.ports import ChatPlatform, RateLimits
from bot.app import Runtime, build
from bot.server import create_app
from bot.settings import Settings
from bot.telegram import make_platform, plugin
from bot.telegram.server import SECRET_HEADER
from storage.db import Database
from tests.factories import APPROVER, COMMS, ENG_LEAD, seed
from tests.fakes.telegram_api import ChatMessage, FakeTelegramAPI
from tests.fakes.telegram_updates import Updates

SECRET = "webhook-secret_42"
#: Telegram user ids (= private chat ids) of the people the scenarios link.
CASEY, AVERY, ERIN, SAM, ENG1, ENG2 = 1001, 1002, 1003, 1004, 2001, 2002
LINKED = {COMMS.email: CASEY, APPROVER.email: AVERY, ENG_LEAD.email: ERIN,
          "eng1@example.com": ENG1, "eng2@example.com": ENG2}


def settings_for(api: FakeTelegramAPI, db: Database, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db.url.render_as_string(hide_password=False),
        "telegram_bot_token": api.token,
        "telegram_webhook_secret": SECRET,
        "telegram_api_url": api.base_url,
    }
    if "working_hours" in {f.name for f in fields(Settings)}:
        values["working_hours"] = "off"  # these tests are not about quiet hours
    values.update(overrides)
    return Settings(**values)


class TelegramWorld:
    def __init__(self, api: FakeTelegramAPI, db: Database, clock: ManualClock,
                 ids: dict[str, int], others: dict[str, ChatPlatform] | None = None) -> None:
        self.api = api
        self.clock = clock
        self.ids = ids
        self.settings = settings_for(api, db)
        self.platform = make_platform(self.settings)
        platforms: dict[str, ChatPlatform] = {"telegram": self.platform, **(others or {})}
        self.runtime: Runtime = build(self.settings, platforms, clock=clock, db=db)
        # Pace by the test clock, without the per-chat second: a 429 still pauses the lane
        # until the clock has moved past Retry-After.
        for lane in self.runtime.engine.lanes.values():
            lane.throttle = Throttle(RateLimits(0, 0), monotonic=lambda: clock.now().timestamp())
        self.app = create_app(self.runtime, [plugin(self.runtime)], run_workers=False)
        self.updates = Updates()
        self._stack = AsyncExitStack()
        self.client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> TelegramWorld:
        await self._stack.enter_async_context(self.app.router.lifespan_context(self.app))
        self.client = await self._stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://crier.test"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    @property
    def db(self) -> Database:
        return self.runtime.db

    # -- as Telegram -----------------------------------------------------------------

    async def post(self, update: dict[str, Any] | str | bytes,
                   secret: str | None = SECRET) -> httpx.Response:
        assert self.client is not None
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        if isinstance(update, dict):
            return await self.client.post("/telegram/webhook", json=update, headers=headers)
        return await self.client.post("/telegram/webhook", content=update, headers=headers)

    async def say(self, user_id: int, text: str, chat_id: int | None = None
                  ) -> list[ChatMessage]:
        """The user types ``text``; returns what the bot sent to that chat in response."""
        chat = user_id if chat_id is None else chat_id
        before = {m.message_id for m in self.api.chat(chat)}
        response = await self.post(self.updates.message(user_id, text, chat_id=chat))
        assert response.status_code == 200, response.text
        return [m for m in self.api.chat(chat) if m.message_id not in before]

    async def click(self, user_id: int, message: ChatMessage, data: str) -> dict[str, Any]:
        """The user presses a button; returns the answerCallbackQuery the bot made."""
        update = self.updates.click(user_id, message, data)
        response = await self.post(update)
        assert response.status_code == 200, response.text
        query_id = update["callback_query"]["id"]
        answers = [c.params for c in self.api.requests("answerCallbackQuery")
                   if c.params.get("callback_query_id") == query_id]
        assert len(answers) == 1, "a callback query must be answered exactly once"
        return answers[0]

    async def vote(self, user_id: int, poll_id: str, option_ids: list[int]) -> None:
        response = await self.post(self.updates.poll_answer(user_id, poll_id, option_ids))
        assert response.status_code == 200, response.text

    async def drain(self) -> int:
        return await self.runtime.engine.drain()

    async def link(self, email: str, user_id: int) -> list[ChatMessage]:
        """Link through an admin's invite, as ``crier telegram invite`` issues it."""
        issued = create_invite(self.db, self.clock, email, "telegram")
        return await self.say(user_id, f"/start {issued.code}")

    # -- what users see ------------------------------------------------------------------

    def chat(self, user_id: int) -> list[ChatMessage]:
        return self.api.chat(user_id)

    def holding(self, user_id: int, data: str) -> ChatMessage:
        """The newest message in the user's chat with a button ``data``."""
        for message in reversed(self.api.chat(user_id)):
            if data in [d for _, d in message.buttons]:
                return message
        raise AssertionError(f"no message with button {data!r} in chat {user_id}: "
                             f"{[m.text for m in self.api.chat(user_id)]}")


@asynccontextmanager
async def linked_world(db: Database, clock: ManualClock, api: FakeTelegramAPI,
                       linked: dict[str, int] | None = None,
                       others: dict[str, ChatPlatform] | None = None,
                       identities: dict[str, dict[str, str]] | None = None,
                       ) -> AsyncIterator[TelegramWorld]:
    """The test company, with ``linked`` (email -> Telegram user id) linked by invite."""
    ids = seed(db, clock, identities=identities)
    async with TelegramWorld(api, db, clock, ids, others) as world:
        for email, user in (LINKED if linked is None else linked).items():
            said = await world.link(email, user)
            assert (said[-1].text or "").startswith("✓ Linked"), said[-1].text
        api.reset()
        yield world
