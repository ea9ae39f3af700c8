"""Long polling (``crier serve --telegram-polling``) and the adapter's small parts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from announcements.linking import create_invite
from announcements.ports import PermanentError
from announcements.types import Button, OutboundMessage
from bot.app import build
from bot.console import ConsolePlatform
from bot.settings import Settings
from bot.telegram import plugin
from bot.telegram.platform import MessageRef
from bot.telegram.render import keyboard, render
from bot.telegram.server import TelegramServer
from tests.fakes.telegram_api import parse_html, utf16_len
from tests.fakes.telegram_world import ENG1, linked_world


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for the polling task (another task, talking to another thread) to get there."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_long_polling_links_and_processes_each_update_once(db, clock, api):
    async with linked_world(db, clock, api, linked={}) as world:
        api.webhook = {"url": "https://old.example.com/telegram/webhook"}
        server = TelegramServer(world.runtime, world.platform, poll_timeout=1)
        assert len(plugin(world.runtime, polling=True).background) == 1
        issued = create_invite(world.db, clock, "eng1@example.com", "telegram")
        start = world.updates.message(ENG1, f"/start {issued.code}")
        api.push_update(start)
        stop = asyncio.Event()
        task = asyncio.create_task(server.poll(stop))
        try:
            await until(lambda: any((m.text or "").startswith("✓ Linked")
                                    for m in api.chat(ENG1)))
            api.push_update(start)  # delivered again (e.g. after a crash): no second effect
            whoami = world.updates.message(ENG1, "/crier whoami")
            api.push_update(whoami)
            await until(lambda: "Linked: telegram (2001)" in (api.chat(ENG1)[-1].text or ""))
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
        assert api.requests("deleteWebhook") and api.webhook == {}
        assert len([m for m in api.chat(ENG1) if (m.text or "").startswith("✓ Linked")]) == 1
        offsets = [c.params.get("offset") for c in api.requests("getUpdates")]
        assert whoami["update_id"] + 1 in offsets  # what was processed is confirmed


def test_the_plugin_needs_a_telegram_platform(db, clock):
    runtime = build(Settings(), {"console": ConsolePlatform()}, clock=clock, db=db)
    with pytest.raises(ValueError, match="no Telegram platform"):
        plugin(runtime)


def test_message_refs_round_trip():
    for ref in ("1001:5", "1001:5,6,7", "-100123:9:5000000001", "@news:3"):
        assert str(MessageRef.parse(ref)) == ref
    assert MessageRef.parse("1001:5,6:77").poll_id == "77"
    for bad in ("", "1001", "1001:x", "1:2:3:4"):
        with pytest.raises(PermanentError):
            MessageRef.parse(bad)


def test_rendering_escapes_and_splits_by_visible_length():
    message = OutboundMessage(title="A <b> & c", text="*Bold* <i>not html</i>\n\nsecond",
                              footer="5 > 4")
    [html] = render(message).chunks
    assert html == ("<b>A &lt;b&gt; &amp; c</b>\n\n<b>Bold</b> &lt;i&gt;not html&lt;/i&gt;\n\n"
                    "second\n\n<i>5 &gt; 4</i>")
    assert parse_html(html) == "A <b> & c\n\nBold <i>not html</i>\n\nsecond\n\n5 > 4"

    # Escaping adds characters, but Telegram limits what is shown: 4,000 '&' fit in one.
    assert len(render(OutboundMessage(text="&" * 4000)).chunks) == 1
    # Emoji count twice (UTF-16), as Telegram counts them.
    chunks = render(OutboundMessage(text="🎉" * 3000)).chunks
    assert len(chunks) == 2 and all(utf16_len(parse_html(c)) <= 4096 for c in chunks)
    # A paragraph longer than a message is cut at a space.
    words = render(OutboundMessage(text="ab " * 3000)).chunks
    assert len(words) == 3 and all(parse_html(c).endswith("ab") for c in words)


def test_callback_data_over_64_bytes_is_refused():
    assert keyboard((Button("ack:12", "Got it"),)) is not None
    with pytest.raises(ValueError, match="64-byte"):
        keyboard((Button("ack:" + "9" * 70, "Got it"),))
