"""Property-based fuzzing of the inbound pipeline through the platform adapters.

Generated command text and generated button ids go through each adapter's real
wire format: signed slash commands and ``block_actions`` posted to the Slack
app's HTTP route, and webhook updates (with the secret header) to Telegram's.
Whatever was sent, the adapter answers below 500, the person sees an answer in
what the fake platform recorded, and nothing is logged at ERROR level (a
traceback, or a "that did not go through" after a crash).

Bounded and derandomized: the same examples on every run, in a few seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from announcements.types import Verb
from bot.slack.app import COMMANDS
from tests.factories import company, seed
from tests.fakes.slack_api import TEAM, FakeSlackAPI, dm
from tests.fakes.slack_events import AVERY, CASEY, ENG, SlackChat, identities, sign, slack_chat
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_world import CASEY as TG_CASEY
from tests.fakes.telegram_world import ENG1 as TG_ENG1
from tests.fakes.telegram_world import TelegramWorld, linked_world
from tests.test_grammar_fuzz import LINES, NUMBERS
from tests.test_inbound_faults import telegram_sent

#: Who speaks: an author, an approver, a recipient, and someone Crier does not know.
SLACK_PEOPLE = (CASEY, AVERY, ENG["eng1@example.com"], "U0STRANGER")
TELEGRAM_PEOPLE = (TG_CASEY, TG_ENG1, 987654321)
#: What someone not linked yet sends: an email, a code, /start with a code.
LINKING = ("sales1@example.com", "casey.comms@example.com", "nobody@example.com", "123456",
           "/start", "/start abcdefghijklmnop", "/start 123456", "/unlink", "/help")
#: The commands Crier registers with Slack (Slack sends no others).
SLACK_COMMANDS = COMMANDS

#: Button ids: well formed with numbers of any size, near misses, and anything at all.
VERBS = st.sampled_from([v.value for v in Verb] + ["ACK", "vote ", "", "click", "ack:ack"])
BUTTONS = st.one_of(
    st.sampled_from(("ack:1", "vote:2:1", "vote:2:3", "approve:2", "reject:2", "submit:2",
                     "discard:2", "approve-edit:1:1")),
    st.tuples(VERBS, NUMBERS).map(":".join),
    st.tuples(VERBS, NUMBERS, NUMBERS).map(":".join),
    st.tuples(VERBS, st.text(max_size=12)).map(":".join),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),
)

EXAMPLES = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def utf8(text: str) -> str:
    """What a platform can carry: UTF-8 has no lone surrogates (they arrive as �)."""
    return text.encode("utf-8", "replace").decode("utf-8")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """What was logged at ERROR or above, by any logger."""
    caplog.set_level(logging.WARNING)
    yield caplog.records
    caplog.clear()


def no_errors(records: list[logging.LogRecord], what: object) -> None:
    bad = [r for r in records if r.levelno >= logging.ERROR]
    assert not bad, (what, [r.getMessage() for r in bad])


# -- Slack ------------------------------------------------------------------------------


class SlackWire:
    """Signed requests as Slack sends them, each with its own response_url; what the
    person saw is read back from the fake's recorded calls."""

    VISIBLE = ("views.open", "chat.postEphemeral", "chat.postMessage", "chat.update")

    def __init__(self, chat: SlackChat) -> None:
        self.chat = chat
        self.ids = itertools.count(1)

    def _seen(self) -> int:
        return sum(len(self.chat.fake.requests(m)) for m in self.VISIBLE)

    async def send(self, form: dict[str, str], hook: str) -> tuple[int, int]:
        """Post ``form`` signed; (HTTP status, how many things the person was shown)."""
        before = self._seen()
        body = urlencode(form)
        stamp = int(time.time())
        response = await self.chat.http.post(
            "/slack/events", content=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "X-Slack-Request-Timestamp": str(stamp),
                     "X-Slack-Signature": sign(body, stamp)})
        await self.chat.bot.settle()
        shown = len(self.chat.fake.hook_posts(hook)) + self._seen() - before  # hooks: unique
        return response.status_code, shown

    async def command(self, user: str, command: str, text: str) -> tuple[int, int]:
        name = f"fuzz{next(self.ids)}"
        form = {"token": "legacy", "team_id": TEAM, "channel_id": "C0GENERAL", "user_id": user,
                "user_name": user.lower(), "command": command, "text": text,
                "response_url": self.chat.fake.hook_url(name), "trigger_id": f"trigger-{name}",
                "api_app_id": "A0CRIER"}
        return await self.send(form, name)

    async def press(self, user: str, action: str, on_message: bool) -> tuple[int, int]:
        """``user`` presses a button ``action`` on their latest direct message from Crier
        (``on_message``, where they have one) or on an ephemeral answer."""
        n = next(self.ids)
        name = f"fuzz{n}"
        held = self.chat.fake.messages(dm(user))[-1:] if on_message else []
        where: dict[str, Any] = {
            "container": {"type": "message", "message_ts": f"1700000000.{n:06d}",
                          "channel_id": "C0GENERAL", "is_ephemeral": True},
            "channel": {"id": "C0GENERAL"}}
        if held:
            where = {"container": {"type": "message", "message_ts": held[0].ts,
                                   "channel_id": held[0].channel, "is_ephemeral": False},
                     "channel": {"id": held[0].channel},
                     "message": {"ts": held[0].ts, "blocks": held[0].blocks}}
        payload = {
            "type": "block_actions", "team": {"id": TEAM}, "user": {"id": user},
            "api_app_id": "A0CRIER", "trigger_id": f"trigger-{name}", **where,
            "response_url": self.chat.fake.hook_url(name),
            "actions": [{"type": "button", "action_id": action, "block_id": "b",
                         "value": action, "action_ts": f"{time.time():.6f}"}],
        }
        return await self.send({"payload": json.dumps(payload)}, name)

    async def sent(self) -> None:
        """Something real to press: #1 sent to Engineering with Got it, poll #2 waiting
        for approval."""
        chat = self.chat
        preview = await chat.command(CASEY, "/announce", "to:Engineering ack Read the policy")
        await chat.click_ephemeral(CASEY, "submit:1", preview)
        await chat.deliver()
        await chat.click(AVERY, "approve:1")
        preview = await chat.command(CASEY, "/poll", 'to:Engineering "Lunch?" "Pizza" "Soup"')
        await chat.click_ephemeral(CASEY, "submit:2", preview)
        await chat.deliver()


@pytest.fixture
def slack(db, clock, loop) -> Iterator[SlackWire]:
    """The test company in a fake Slack workspace, on this test's own event loop (the
    examples share it: state piles up as in a real workspace)."""
    seed(db, clock, company(), identities())
    stack = AsyncExitStack()
    fake = stack.enter_context(FakeSlackAPI())
    chat = loop.run_until_complete(stack.enter_async_context(slack_chat(db, clock, fake)))
    wire = SlackWire(chat)
    loop.run_until_complete(wire.sent())
    yield wire
    loop.run_until_complete(stack.aclose())


@EXAMPLES
@given(user=st.sampled_from(SLACK_PEOPLE), command=st.sampled_from(SLACK_COMMANDS),
       text=LINES.map(utf8))
def test_every_slack_command_is_answered(slack, loop, errors, user, command, text):
    status, shown = loop.run_until_complete(slack.command(user, command, text))
    assert status < 500 and shown >= 1, (command, text, status)
    no_errors(errors, (command, text))


@EXAMPLES
@given(user=st.sampled_from(SLACK_PEOPLE), action=BUTTONS.map(utf8), on_message=st.booleans())
def test_every_slack_button_press_is_answered(slack, loop, errors, user, action, on_message):
    status, shown = loop.run_until_complete(slack.press(user, action, on_message))
    assert status < 500 and shown >= 1, (action, status)
    no_errors(errors, action)


# -- Telegram ---------------------------------------------------------------------------


@pytest.fixture
def telegram(db, clock, loop) -> Iterator[TelegramWorld]:
    """The test company linked on a fake Telegram, on this test's own event loop."""
    stack = AsyncExitStack()
    api = stack.enter_context(FakeTelegramAPI())
    world = loop.run_until_complete(stack.enter_async_context(linked_world(db, clock, api)))
    loop.run_until_complete(telegram_sent(world))  # #1, with Got it, in Engineering's chats
    yield world
    loop.run_until_complete(stack.aclose())


async def telegram_message(world: TelegramWorld, user: int, text: str) -> tuple[int, int]:
    """``user`` sends ``text`` in their private chat; (HTTP status, messages they got)."""
    before = len(world.api.requests("sendMessage")) + len(world.api.requests("sendPoll"))
    response = await world.post(world.updates.message(user, text))
    after = len(world.api.requests("sendMessage")) + len(world.api.requests("sendPoll"))
    return response.status_code, after - before


async def telegram_press(world: TelegramWorld, user: int, data: str) -> tuple[int, int]:
    """``user`` presses a button whose callback data is ``data`` on a message in their chat;
    (HTTP status, answers to that press: callback answers with text, and messages)."""
    update_id = next(world.updates._ids)
    query = str(update_id)
    latest = world.chat(user)[-1:]
    shown = {"message_id": latest[0].message_id if latest else 1, "date": int(time.time()),
             "text": latest[0].text or "" if latest else "An earlier message",
             "chat": {"id": user, "type": "private", "first_name": f"User{user}"}}
    before = len(world.api.requests("sendMessage"))
    response = await world.post({"update_id": update_id, "callback_query": {
        "id": query, "from": {"id": user, "is_bot": False, "first_name": f"User{user}"},
        "message": shown, "chat_instance": f"ci{user}", "data": data}})
    answers = [c.params for c in world.api.requests("answerCallbackQuery")
               if c.params.get("callback_query_id") == query]
    assert len(answers) <= 1, "a callback query is answered at most once"
    said = len(world.api.requests("sendMessage")) - before
    return response.status_code, said + sum(1 for a in answers if a.get("text"))


@EXAMPLES
@given(user=st.sampled_from(TELEGRAM_PEOPLE),
       text=(LINES | st.sampled_from(LINKING)).filter(lambda t: t.strip()).map(
           lambda t: t[:4096]))
def test_every_telegram_message_is_answered(telegram, loop, errors, user, text):
    status, said = loop.run_until_complete(telegram_message(telegram, user, text))
    assert status < 500 and said >= 1, (text, status)
    no_errors(errors, text)


def callback_data(text: str) -> str:
    """At most Telegram's 64 bytes of callback data, cut on a character boundary."""
    return text.encode("utf-8", "replace")[:64].decode("utf-8", "ignore") or "x"


@EXAMPLES
@given(user=st.sampled_from(TELEGRAM_PEOPLE), data=BUTTONS.map(callback_data))
def test_every_telegram_button_press_is_answered(telegram, loop, errors, user, data):
    status, shown = loop.run_until_complete(telegram_press(telegram, user, data))
    assert status < 500 and shown >= 1, (data, status)
    no_errors(errors, data)


def test_the_wires_report_what_the_person_saw(slack, loop):
    """The measures above can fail: a request nobody answers shows nothing."""
    status, shown = loop.run_until_complete(slack.press(CASEY, "ack:1", on_message=False))
    assert status == 200 and shown == 1
    assert loop.run_until_complete(slack.send({"payload": "{}"}, "nobody"))[1] == 0


