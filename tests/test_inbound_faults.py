"""Faults on the way in: a handler that fails once, retries, concurrent clicks, forged
values. Each event takes effect exactly once, and the person always hears back."""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, func, select

from bot.console import ConsoleSession
from bot.telegram.server import TelegramServer
from storage.db import Database
from storage.models import Announcement, AuditEvent, Receipt, Vote
from tests.factories import COMMS
from tests.fakes.slack_events import AVERY, CASEY, ENG, SlackChat, form_values
from tests.fakes.telegram_world import AVERY as TG_AVERY
from tests.fakes.telegram_world import CASEY as TG_CASEY
from tests.fakes.telegram_world import ENG1, TelegramWorld, linked_world
from tests.harness import make_chat

TRY_AGAIN = "That did not go through, try again."


@contextmanager
def fails_once(db: Database, table: str) -> Iterator[dict[str, int]]:
    """The database driver refuses the next INSERT into ``table`` as a locked database
    would (the driver's own OperationalError)."""
    left = {"failures": 1}
    dbapi = db.engine.dialect.loaded_dbapi

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if left["failures"] and statement.lstrip().upper().startswith(
                f"INSERT INTO {table.upper()} "):
            left["failures"] -= 1
            raise dbapi.OperationalError("database is locked")

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield left
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def first_id(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, text
    return int(match.group(1))


def count(db: Database, model: Any, ann: int) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(model)
                             .where(model.announcement_id == ann)).scalar_one())


# -- Slack ----------------------------------------------------------------------------

async def slack_sent(slack: SlackChat, command: str, text: str) -> int:
    """Draft, submit, approve and deliver through Slack; the announcement id."""
    preview = await slack.command(CASEY, command, text)
    ann = first_id(r"submit:(\d+)", " ".join(preview.actions))
    await slack.click_ephemeral(CASEY, f"submit:{ann}", preview)
    await slack.deliver()
    await slack.click(AVERY, f"approve:{ann}")
    await slack.deliver()
    return ann


async def test_a_slack_click_that_fails_says_try_again_and_the_next_click_counts_once(
        slack, db, caplog):
    ann = await slack_sent(slack, "/announce", "to:Engineering ack Read the policy")
    eng1 = ENG["eng1@example.com"]
    message = slack.fake.holding(eng1, f"ack:{ann}")
    with fails_once(db, "receipt") as left:
        first = await slack.click(eng1, f"ack:{ann}", message, action_ts=1000.0)
    assert left["failures"] == 0
    assert TRY_AGAIN in first.text
    assert count(db, Receipt, ann) == 0
    failed = [r for r in caplog.records if r.name == "crier.inbound"]
    assert [r.getMessage() for r in failed] == [
        f"slack request from {eng1} failed: database: database is locked"]
    assert failed[0].exc_info is None  # one line in the log, not a traceback
    assert slack.fake.holding(eng1, f"ack:{ann}").actions == [f"ack:{ann}"]  # still to press

    # Pressed again within the double-click window: the failed press recorded nothing.
    second = await slack.click(eng1, f"ack:{ann}", message, action_ts=1000.4)
    assert "✓ Acknowledged" in second.text
    assert count(db, Receipt, ann) == 1


async def test_thirty_concurrent_clicks_of_one_button_have_one_effect(slack, db):
    # In a multi-choice poll a click toggles the option: two effects would undo the vote.
    ann = await slack_sent(slack, "/poll", 'to:Engineering multi "Which days?" "Mon" "Tue"')
    eng1 = ENG["eng1@example.com"]
    message = slack.fake.holding(eng1, f"vote:{ann}:1")
    stamp = time.time()
    shown = await asyncio.gather(*(
        slack.click(eng1, f"vote:{ann}:1", message, action_ts=stamp + i / 100)
        for i in range(30)))
    assert count(db, Vote, ann) == 1
    answers = [s.text for s in shown if s.posts]
    assert len(answers) == 1 and f"Your answer to #{ann}: Mon." in answers[0]


async def test_cancel_typed_in_slack_answers(slack, db):
    preview = await slack.command(CASEY, "/announce", "to:Engineering Lunch is on us")
    ann = first_id(r"submit:(\d+)", " ".join(preview.actions))
    shown = await slack.command(CASEY, "/crier", f"cancel {ann}")
    assert f"#{ann}" in shown.text and "cancelled" in shown.text.lower()
    with db.session() as s:
        assert s.get(Announcement, ann).status == "cancelled"


async def test_a_forged_button_id_gets_the_usual_answer(slack):
    ann = await slack_sent(slack, "/announce", "to:Engineering ack Read the policy")
    eng1 = ENG["eng1@example.com"]
    held = slack.fake.holding(eng1, f"ack:{ann}")
    container = {"type": "message", "message_ts": held.ts, "channel_id": held.channel}
    forged = slack._action_payload(eng1, "ack:99999999999999999999", container,
                                   {"channel": {"id": held.channel}})
    shown = await slack._send_payload(forged)
    assert "`ack:99999999999999999999` is not a button" in shown.text


async def test_a_forged_date_in_the_drafting_form_is_a_field_error(slack, db):
    await slack.command(CASEY, "/announce")
    view = slack.fake.requests("views.open")[-1].params["view"]
    for forged in (10**15, "soon", ["1"], -(10**15)):
        response = await slack.submit(CASEY, view, form_values(
            message="Read this", audience=["all"], schedule=forged))
        assert response.status_code == 200, forged
        assert response.json() == {"response_action": "errors",
                                   "errors": {"schedule": "Pick a date and time with the picker."}}
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Announcement)).scalar_one() == 0


# -- Telegram ---------------------------------------------------------------------------

async def telegram_sent(world: TelegramWorld) -> int:
    said = await world.say(TG_CASEY, "/announce to:Engineering ack Read the policy")
    ann = first_id(r"#(\d+)", said[-1].text or "")
    await world.click(TG_CASEY, said[-1], f"submit:{ann}")
    await world.drain()
    await world.click(TG_AVERY, world.holding(TG_AVERY, f"approve:{ann}"), f"approve:{ann}")
    await world.drain()
    return ann


def callback_answers(world: TelegramWorld, query_id: str) -> list[dict[str, Any]]:
    return [c.params for c in world.api.requests("answerCallbackQuery")
            if c.params.get("callback_query_id") == query_id]


async def test_a_telegram_click_that_fails_is_delivered_again_and_counts_once(world, db):
    ann = await telegram_sent(world)
    got = world.holding(ENG1, f"ack:{ann}")
    update = world.updates.click(ENG1, got, f"ack:{ann}")
    query = update["callback_query"]["id"]
    with fails_once(db, "receipt"):
        first = await world.post(update)
    assert first.status_code == 500  # so Telegram delivers the update again
    assert callback_answers(world, query)[0]["text"].startswith(f"✗ {TRY_AGAIN}")
    assert count(db, Receipt, ann) == 0

    again = await world.post(update)  # Telegram's retry: the same update_id
    assert again.status_code == 200
    assert count(db, Receipt, ann) == 1
    assert world.api.find(ENG1, got.message_id).buttons == [("✓ Acknowledged", f"ack:{ann}")]
    answered = len(world.api.requests("answerCallbackQuery"))
    assert (await world.post(update)).status_code == 200  # delivered a third time
    assert len(world.api.requests("answerCallbackQuery")) == answered
    assert count(db, Receipt, ann) == 1


async def test_a_telegram_command_that_fails_is_delivered_again_and_drafts_once(world, db):
    update = world.updates.message(TG_CASEY, "/announce to:Engineering Lunch is on us")
    with fails_once(db, "announcement"):
        first = await world.post(update)
    assert first.status_code == 500
    assert world.chat(TG_CASEY)[-1].text.startswith(f"✗ {TRY_AGAIN}")
    for _ in range(2):  # Telegram's retry, then once more
        assert (await world.post(update)).status_code == 200
    previews = [m for m in world.chat(TG_CASEY) if "Lunch is on us" in (m.text or "")]
    assert len(previews) == 1
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Announcement)).scalar_one() == 1


async def test_thirty_concurrent_telegram_clicks_acknowledge_once(world, db):
    ann = await telegram_sent(world)
    got = world.holding(ENG1, f"ack:{ann}")
    updates = [world.updates.click(ENG1, got, f"ack:{ann}") for _ in range(30)]
    responses = await asyncio.gather(*(world.post(u) for u in updates))
    assert [r.status_code for r in responses] == [200] * 30
    assert count(db, Receipt, ann) == 1
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.announcement_id == ann, AuditEvent.action == "acknowledged")
        ).scalar_one() == 1
    # Every press is answered (Telegram shows a spinner until then), none with an error;
    # only the press that stored the receipt says "Acknowledged", even the ones that raced it.
    texts = sorted(callback_answers(world, u["callback_query"]["id"])[0]["text"]
                   for u in updates)
    assert texts == [f"✓ Acknowledged #{ann}."] + [f"✓ Already acknowledged #{ann}."] * 29


async def test_one_update_delivered_ten_times_at_once_drafts_once(world, db):
    update = world.updates.message(TG_CASEY, "/announce to:Engineering Lunch is on us")
    responses = await asyncio.gather(*(world.post(update) for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Announcement)).scalar_one() == 1
    assert len([m for m in world.chat(TG_CASEY) if "Lunch is on us" in (m.text or "")]) == 1


# -- Console ------------------------------------------------------------------------------

async def test_console_input_that_is_not_utf8_gets_an_answer_and_the_session_goes_on(db, clock):
    chat = make_chat(db, clock)
    out = io.StringIO()
    session = ConsoleSession(chat.runtime.router, chat.platform, chat.runtime.engine,
                             COMMS.email, out)
    # Bytes from a terminal in Latin-1, and the same read as text with surrogateescape.
    await session.run([b"/announce to:Engineering Caf\xe9 opens at noon\n",
                       "/crier status 1\udce9\n", "as eng1\x00@example.com\n",
                       "/crier whoami\n"])
    said = out.getvalue()
    assert "Caf\ufffd opens at noon" in said and "will reach 7 people" in said
    assert "`1\ufffd` is not an announcement number" in said
    assert "✗ The email contains a control character (U+0000)" in said
    assert "Casey Morgan" in said.split("is not an announcement number")[1]  # still running
    assert "Traceback" not in said


async def test_a_button_id_too_large_for_the_database_is_refused_in_words(db, clock):
    chat = make_chat(db, clock)
    out = await chat.click("eng1@example.com", "ack:99999999999999999999")
    assert out.startswith("✗ `ack:99999999999999999999` is not a button")
    out = await chat.click("eng1@example.com", f"vote:1:{2**63}")
    assert out.startswith(f"✗ `vote:1:{2**63}` is not a button")


async def test_control_characters_while_linking_telegram_get_a_clear_answer(db, clock, api):
    async with linked_world(db, clock, api, linked={}) as world:
        for text in ("ana\x00@example.com", "/start abcdefghijklmnop\x00"):
            response = await world.post(world.updates.message(9999, text))
            assert response.status_code == 200
            assert "control character (U+0000)" in (world.chat(9999)[-1].text or "")


async def test_long_polling_asks_again_for_an_update_that_failed(db, clock, api):
    async with linked_world(db, clock, api) as world:
        server = TelegramServer(world.runtime, world.platform, poll_timeout=1)
        before = len(world.chat(TG_CASEY))
        api.push_update(world.updates.message(TG_CASEY, "/announce to:Engineering Lunch"))
        stop = asyncio.Event()
        with fails_once(db, "announcement") as left:
            task = asyncio.create_task(server.poll(stop))
            try:
                deadline = time.monotonic() + 10
                while not any("will reach" in (m.text or "") for m in world.chat(TG_CASEY)):
                    assert time.monotonic() < deadline, [m.text for m in world.chat(TG_CASEY)]
                    await asyncio.sleep(0.02)
            finally:
                stop.set()
                await asyncio.wait_for(task, 5)
        assert left["failures"] == 0
        said = [m.text or "" for m in world.chat(TG_CASEY)][before:]
        assert said[0].startswith(f"✗ {TRY_AGAIN}") and "will reach 7 people" in said[1]
        assert len(said) == 2
        with db.session() as s:
            assert s.execute(select(func.count()).select_from(Announcement)).scalar_one() == 1
