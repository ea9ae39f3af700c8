"""What every ``ChatPlatform`` offers besides sending: start, stop, and the address of
a direct conversation with a person (what Teams will need to open a chat first),
on the console and on Slack and Telegram pointed at their fake APIs."""

from __future__ import annotations

import pytest

from announcements.ports import ChatPlatform, Unreachable
from announcements.types import OutboundMessage
from bot.console import ConsolePlatform
from bot.settings import Settings
from bot.slack.platform import make_platform as make_slack
from bot.telegram.platform import make_platform as make_telegram
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.telegram_api import FakeTelegramAPI

HELLO = OutboundMessage(text="Hello in private")


async def test_the_console_addresses_a_person_by_email():
    console = ConsolePlatform()
    port: ChatPlatform = console  # the console implements the whole port
    await port.start()

    address = await port.open_direct(" Ana@Example.com ")
    await port.send(address, HELLO)

    assert address == "ana@example.com"
    assert [i.message.text for i in console.inbox("ana@example.com")] == ["Hello in private"]
    with pytest.raises(Unreachable):
        await port.open_direct("")
    await port.stop()


async def test_slack_opens_the_app_dm_and_closes_its_session():
    with FakeSlackAPI() as slack:
        platform = make_slack(Settings(slack_bot_token=slack.token, slack_api_url=slack.url))
        await platform.start()
        session = platform.client.session
        assert session is not None and not session.closed

        address = await platform.open_direct("U0ANA")
        await platform.send(address, HELLO)

        assert address.startswith("D")
        assert [c.params["users"] for c in slack.requests("conversations.open")] == ["U0ANA"]
        assert "Hello in private" in slack.last("U0ANA").visible
        slack.make_unreachable("U0GONE", "user_not_found")
        with pytest.raises(Unreachable, match="user_not_found"):
            await platform.open_direct("U0GONE")
        await platform.stop()
        assert session.closed and platform.client.session is None


async def test_telegram_private_chats_are_the_user_id_and_start_learns_the_bot():
    with FakeTelegramAPI() as telegram:
        platform = make_telegram(Settings(telegram_bot_token=telegram.token,
                                          telegram_api_url=telegram.base_url))
        await platform.start()
        await platform.start()  # a second start does nothing
        assert len(telegram.requests("getMe")) == 1
        assert platform.username == "crier_test_bot"

        address = await platform.open_direct("100200300")
        await platform.send(address, HELLO)

        assert address == "100200300"
        assert [m.text for m in telegram.chat(100200300)] == ["Hello in private"]
        for wrong in ("@channel", "-100777", "ana"):
            with pytest.raises(Unreachable, match="is not a user id"):
                await platform.open_direct(wrong)
        await platform.stop()
