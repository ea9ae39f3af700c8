"""The same end-to-end scenario on every platform, each through its own wire format:
draft -> submit -> approve -> deliver -> Got it -> poll answer -> status, plus the
answers everyone must get to a cancel and to text Crier cannot store.

A new platform is added by adding one driver: how a person types, presses a button
and answers a poll there, and what they then read.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from typing import Any, Protocol

import pytest

from bot.console import ConsoleSession
from bot.console.render import buttons_of, render
from tests.factories import APPROVER, COMMS, company, seed
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_events import SLACK_IDS, SlackChat, identities, slack_chat
from tests.fakes.teams_connector import card_text
from tests.fakes.teams_world import TeamsWorld, teams_world
from tests.fakes.telegram_world import LINKED, TelegramWorld, linked_world
from tests.harness import Chat, make_chat

ENG1 = "eng1@example.com"


class Driver(Protocol):
    async def say(self, email: str, line: str | bytes) -> str:
        """``email`` types ``line``; what they read in answer."""

    async def press(self, email: str, action: str) -> str:
        """``email`` presses the newest button ``action`` they hold; what they read."""

    async def answer_poll(self, email: str, ann: int, position: int) -> None:
        """``email`` chooses option ``position`` (from 1) of poll ``ann``."""

    async def deliver(self) -> None: ...

    def holds(self, email: str, action: str) -> str:
        """The text of the newest message ``email`` holds with the button ``action``."""


class ConsoleDriver:
    """The console: lines typed into a session, read back from what it prints."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat
        self.out = io.StringIO()
        rt = chat.runtime
        self.session = ConsoleSession(rt.router, chat.platform, rt.engine, COMMS.email,
                                      self.out, scheduler=rt.scheduler)

    async def _line(self, email: str, line: str | bytes) -> str:
        await self.session.handle(f"as {email}")
        start = self.out.tell()
        await self.session.handle(line)
        return self.out.getvalue()[start:]

    async def say(self, email: str, line: str | bytes) -> str:
        return await self._line(email, line)

    async def press(self, email: str, action: str) -> str:
        return await self._line(email, f"click {action}")

    async def answer_poll(self, email: str, ann: int, position: int) -> None:
        await self.press(email, f"vote:{ann}:{position}")

    async def deliver(self) -> None:
        await self.chat.tick()

    def holds(self, email: str, action: str) -> str:
        return next(render(m) for m in reversed(self.chat.messages(email))
                    if action in buttons_of(m))


class SlackDriver:
    """Slack: signed slash commands and block_actions posted to /slack/events; answers
    read from response_url posts and chat.update bodies on the fake Web API."""

    def __init__(self, slack: SlackChat) -> None:
        self.slack = slack
        self._previews: dict[str, Any] = {}

    async def say(self, email: str, line: str | bytes) -> str:
        text = line.decode() if isinstance(line, bytes) else line
        command, _, rest = text.partition(" ")
        shown = await self.slack.command(SLACK_IDS[email], command, rest)
        for action in shown.actions:
            self._previews[action] = shown
        return shown.text

    async def press(self, email: str, action: str) -> str:
        user = SLACK_IDS[email]
        if action in self._previews:  # a button on an ephemeral answer (the preview)
            shown = await self.slack.click_ephemeral(user, action, self._previews.pop(action))
            return shown.text
        held = self.slack.fake.holding(user, action)
        shown = await self.slack.click(user, action, held)
        updated = next(m for m in self.slack.fake.messages(user) if m.ts == held.ts)
        return shown.text + "\n" + updated.visible

    async def answer_poll(self, email: str, ann: int, position: int) -> None:
        await self.press(email, f"vote:{ann}:{position}")

    async def deliver(self) -> None:
        await self.slack.deliver()

    def holds(self, email: str, action: str) -> str:
        return self.slack.fake.holding(SLACK_IDS[email], action).visible


class TelegramDriver:
    """Telegram: updates posted to /telegram/webhook; answers read from the fake Bot API
    (messages sent, messages edited, callback query answers, native polls)."""

    def __init__(self, world: TelegramWorld) -> None:
        self.world = world

    async def say(self, email: str, line: str | bytes) -> str:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        said = await self.world.say(LINKED[email], text)
        return "\n".join(m.text or "" for m in said)

    async def press(self, email: str, action: str) -> str:
        user = LINKED[email]
        message = self.world.holding(user, action)
        before = {m.message_id for m in self.world.chat(user)}
        answer = await self.world.click(user, message, action)
        edited = self.world.api.find(user, message.message_id)
        said = [m.text or "" for m in self.world.chat(user) if m.message_id not in before]
        return "\n".join([answer.get("text") or "", (edited.text or "") if edited else "",
                          *said])

    async def answer_poll(self, email: str, ann: int, position: int) -> None:
        user = LINKED[email]
        poll = next(m.poll for m in reversed(self.world.chat(user)) if m.poll)
        await self.world.vote(user, poll["id"], [position - 1])

    async def deliver(self) -> None:
        await self.world.drain()

    def holds(self, email: str, action: str) -> str:
        return self.world.holding(LINKED[email], action).text or ""


class TeamsDriver:
    """Teams: Bot Framework activities posted to /api/messages with signed tokens; clicks
    are Action.Execute invokes answered with the refreshed card; what the bot sends is
    read from the fake connector."""

    def __init__(self, world: TeamsWorld) -> None:
        self.world = world

    async def say(self, email: str, line: str | bytes) -> str:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        return "\n".join(a.text for a in await self.world.say(email, text))

    async def press(self, email: str, action: str) -> str:
        answer, said = await self.world.click(email, action)
        shown = card_text(answer["value"]) if isinstance(answer["value"], dict) \
            else str(answer["value"])
        return "\n".join([shown, *(a.text for a in said)])

    async def answer_poll(self, email: str, ann: int, position: int) -> None:
        await self.press(email, f"vote:{ann}:{position}")

    async def deliver(self) -> None:
        await self.world.deliver()

    def holds(self, email: str, action: str) -> str:
        return self.world.holding(email, action).text


@pytest.fixture(params=["console", "slack", "telegram", "teams"])
async def driver(request, db, clock) -> AsyncIterator[Driver]:
    if request.param == "console":
        yield ConsoleDriver(make_chat(db, clock))
    elif request.param == "slack":
        seed(db, clock, company(), identities())
        with FakeSlackAPI() as fake:
            async with slack_chat(db, clock, fake) as chat:
                yield SlackDriver(chat)
    elif request.param == "teams":
        people = company()
        seed(db, clock, people)
        async with teams_world(db, clock) as world:
            for person in people:
                if person.active:
                    await world.install(person.email)
            yield TeamsDriver(world)
    else:
        api_fixture = request.getfixturevalue("api")
        async with linked_world(db, clock, api_fixture) as world:
            yield TelegramDriver(world)


def number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, text
    return int(match.group(1))


async def approved(driver: Driver, line: str) -> int:
    """Casey drafts ``line`` and submits it, Avery approves, everything is delivered."""
    preview = await driver.say(COMMS.email, line)
    ann = number(r"#(\d+)", preview)
    assert "Sent to" in await driver.press(COMMS.email, f"submit:{ann}")
    await driver.deliver()
    assert f"Approved #{ann}" in await driver.press(APPROVER.email, f"approve:{ann}")
    await driver.deliver()
    return ann


async def test_draft_approve_deliver_ack_poll_status(driver: Driver):
    preview = await driver.say(COMMS.email, "/announce to:Engineering ack Read the new policy")
    assert "will reach 7 people: Engineering 7" in preview
    ann = number(r"#(\d+)", preview)
    assert "Sent to 3 approvers" in await driver.press(COMMS.email, f"submit:{ann}")
    await driver.deliver()
    assert "Casey Morgan asks you to approve" in driver.holds(APPROVER.email, f"approve:{ann}")
    assert f"Approved #{ann}: it goes to 7 people" in await driver.press(
        APPROVER.email, f"approve:{ann}")
    await driver.deliver()

    assert "Read the new policy" in driver.holds(ENG1, f"ack:{ann}")
    assert f"Acknowledged #{ann}" in await driver.press(ENG1, f"ack:{ann}")

    poll = await approved(driver, '/poll to:Engineering "Team lunch?" "Pizza" "Sushi"')
    await driver.answer_poll(ENG1, poll, 2)

    status = await driver.say(COMMS.email, f"/crier status {ann}")
    assert "Acknowledged 1 of 7" in status
    status = await driver.say(COMMS.email, f"/crier status {poll}")
    assert "Answers: 1 of 7 people" in status and "2. Sushi: 1" in status


async def test_a_typed_cancel_is_answered(driver: Driver):
    ann = number(r"#(\d+)", await driver.say(COMMS.email, "/announce to:Engineering Lunch"))
    answer = await driver.say(COMMS.email, f"/crier cancel {ann}")
    assert f"#{ann}" in answer and "cancelled" in answer.lower()
    assert "cancelled" in (await driver.say(COMMS.email, f"/crier status {ann}")).lower()


async def test_text_crier_cannot_store_gets_a_clear_answer(driver: Driver):
    answer = await driver.say(COMMS.email, "/announce to:Engineering Lunch\x00 at noon")
    assert "contains a control character (U+0000)" in answer
    assert "Type it again without it" in answer
    answer = await driver.say(COMMS.email, "/crier status 1\x07")
    assert "control character (U+0007)" in answer
    # Nothing was drafted: the next announcement is #1.
    preview = await driver.say(COMMS.email, "/announce to:Engineering Lunch at noon")
    assert number(r"#(\d+)", preview) == 1

