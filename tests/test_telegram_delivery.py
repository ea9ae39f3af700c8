"""Sending over Telegram: HTML escaping, long text, refusals (403, 429, 5xx), poll
limits, reports with a chart, recall, and the rate limits the engine paces by."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from announcements.compose import RENDERERS
from announcements.delivery import DeliveryEngine
from announcements.limits import MAX_POLL_OPTIONS, TELEGRAM_MESSAGE_CHARS
from announcements.ports import Attachment, RateLimits
from announcements.types import DeliveryStatus, OutboundMessage
from storage.models import Announcement, Delivery
from tests.fakes.telegram_api import utf16_len
from tests.fakes.telegram_world import AVERY, CASEY, ENG1, ENG2, TelegramWorld

GROUP = -100_777


async def publish(world: TelegramWorld, command: str) -> int:
    """Draft as Casey, approve as Avery, deliver; the announcement id."""
    said = await world.say(CASEY, command)
    preview = said[-1]
    assert preview.buttons, preview.text
    ann = int(preview.buttons[0][1].split(":")[1])  # submit:ID
    await world.click(CASEY, preview, f"submit:{ann}")
    await world.drain()
    await world.click(AVERY, world.holding(AVERY, f"approve:{ann}"), f"approve:{ann}")
    await world.drain()
    return ann


def delivery(world: TelegramWorld, ann: int, email: str) -> Delivery:
    with world.db.session() as s:
        return s.execute(select(Delivery).where(
            Delivery.announcement_id == ann, Delivery.purpose == "announcement",
            Delivery.person_id == world.ids[email])).scalar_one()


async def test_html_special_characters_and_emoji_arrive_as_written(world, api):
    text = "Fish & chips <today> at 5 > 4 🎉🐟 — bring R&D's \"best\" mood"
    said = await world.say(CASEY, f"/announce to:@eng1@example.com {text}")
    assert text in said[-1].text  # the preview, as Casey sees it
    assert "Fish &amp; chips &lt;today&gt; at 5 &gt; 4 🎉🐟" in said[-1].html
    await publish(world, f"/announce to:@eng1@example.com {text}")
    [got] = [m for m in world.chat(ENG1) if "Fish" in (m.text or "")]
    assert got.text == f"Announcement from Casey Morgan\n\n{text}"
    assert got.html == ("<b>Announcement from Casey Morgan</b>\n\n"
                        "Fish &amp; chips &lt;today&gt; at 5 &gt; 4 🎉🐟 — bring R&amp;D's "
                        "\"best\" mood")


async def test_long_text_is_split_at_paragraphs_with_the_button_on_the_last(world, api):
    paragraphs = [f"Paragraph {i}: " + "word " * 300 for i in range(6)]  # ~1,500 chars each
    ann = await publish(world, "/announce to:@eng1@example.com ack " + "\n\n".join(paragraphs))
    parts = [m for m in world.chat(ENG1) if "Paragraph" in (m.text or "")]
    assert len(parts) == 3
    assert all(utf16_len(m.text) <= TELEGRAM_MESSAGE_CHARS for m in parts)
    assert [m.buttons for m in parts] == [[], [], [("Got it", f"ack:{ann}")]]
    # Every paragraph arrives whole and in order: splits fall between paragraphs.
    holder = [next(i for i, m in enumerate(parts) if p.strip() in m.text) for p in paragraphs]
    assert holder == sorted(holder) and set(holder) == {0, 1, 2}
    assert delivery(world, ann, "eng1@example.com").message_ref == (
        f"{ENG1}:{','.join(str(m.message_id) for m in parts)}")

    await world.click(ENG1, parts[-1], f"ack:{ann}")
    after = [api.find(ENG1, m.message_id) for m in parts]
    assert [m.edits for m in after] == [0, 0, 1]
    assert after[-1].buttons == [("✓ Acknowledged", f"ack:{ann}")]


async def test_a_user_who_blocked_the_bot_is_unreachable_and_not_retried(world, api):
    api.block(ENG2)
    ann = await publish(world, "/announce to:Engineering ack Fire drill at 11:00")
    row = delivery(world, ann, "eng2@example.com")
    assert row.status == DeliveryStatus.UNREACHABLE
    assert "blocked by the user" in row.error
    attempts = len([c for c in api.requests("sendMessage") if c.params["chat_id"] == ENG2])
    clock = world.clock
    clock.advance(timedelta(hours=1))
    await world.drain()
    assert len([c for c in api.requests("sendMessage")
                if c.params["chat_id"] == ENG2]) == attempts
    status = (await world.say(CASEY, f"/crier status {ann}"))[-1].text
    # eng2 blocked the bot; eng3..eng6 never linked Telegram.
    assert "Sent 2 of 7 · failed 0 · unreachable 5" in status


async def test_429_retry_after_is_honoured(world, api):
    api.fail("sendMessage", 429, retry_after=7, chat_id=ENG1)
    ann = await publish(world, "/announce to:@eng1@example.com Canteen closed today")
    row = delivery(world, ann, "eng1@example.com")
    assert row.status == DeliveryStatus.PENDING
    assert row.next_attempt_at == world.clock.now() + timedelta(seconds=7)
    assert row.attempts == 0  # a 429 is not the message's fault
    assert not any("Canteen" in (m.text or "") for m in world.chat(ENG1))

    world.clock.advance(timedelta(seconds=6))
    assert await world.drain() == 0
    world.clock.advance(timedelta(seconds=1))
    assert await world.drain() == 1
    assert any("Canteen" in (m.text or "") for m in world.chat(ENG1))
    assert delivery(world, ann, "eng1@example.com").status == DeliveryStatus.DELIVERED


async def test_a_server_error_is_retried_with_backoff(world, api):
    api.fail("sendMessage", 502, chat_id=ENG1)
    ann = await publish(world, "/announce to:@eng1@example.com Parking lot repainting")
    row = delivery(world, ann, "eng1@example.com")
    assert row.status == DeliveryStatus.PENDING and "Bad Gateway" in row.error
    world.clock.advance(timedelta(minutes=5))
    await world.drain()
    assert delivery(world, ann, "eng1@example.com").status == DeliveryStatus.DELIVERED
    assert sum("Parking lot" in (m.text or "") for m in world.chat(ENG1)) == 1


async def test_a_poll_with_too_many_options_is_refused_before_anything_is_sent(world, api):
    options = " ".join(f'"Option {i}"' for i in range(MAX_POLL_OPTIONS + 1))
    said = await world.say(CASEY, f'/poll to:Engineering "Which day?" {options}')
    assert [m.text for m in said] == [
        f"✗ a poll can have at most {MAX_POLL_OPTIONS} options (Telegram's limit); this one "
        f"has {MAX_POLL_OPTIONS + 1}\nMerge or drop some options."]
    assert said[-1].buttons == []
    with world.db.session() as s:
        assert s.execute(select(Announcement)).first() is None
    assert api.requests("sendPoll") == []


async def test_a_vote_on_a_poll_not_sent_to_the_voter_is_refused(world, api):
    ann = await publish(world, '/poll to:@eng1@example.com "Desk move?" "Mon" "Tue"')
    poll = [m for m in world.chat(ENG1) if m.poll][-1].poll
    await world.vote(ENG2, poll["id"], [0])  # e.g. a forwarded poll
    assert world.chat(ENG2)[-1].text == (f"✗ #{ann} was not sent to you\nYou can only "
                                         "answer announcements in your own inbox.")


async def test_recall_deletes_every_part(world, api):
    ann = await publish(world, "/announce to:@eng1@example.com " + "\n\n".join(
        ["x" * 3000, "y" * 3000]))
    row = delivery(world, ann, "eng1@example.com")
    await world.platform.delete(row.address, row.message_ref)
    assert [c.params["message_id"] for c in api.requests("deleteMessage")] == [
        int(i) for i in row.message_ref.split(":")[1].split(",")]
    assert not any(("x" * 100) in (m.text or "") for m in world.chat(ENG1))
    await world.platform.delete(row.address, row.message_ref)  # already gone: no error


async def test_the_weekly_report_is_posted_to_a_group_with_its_chart(world, api):
    png = b"\x89PNG\r\n\x1a\n" + b"chart" * 100
    report = OutboundMessage(title="Crier weekly report",
                             text="Sent 12 announcements <all> & 3 polls.")
    ref = await world.platform.post_report(str(GROUP), report,
                                           Attachment("weekly.png", png))
    [photo] = api.requests("sendPhoto")
    assert photo.files["photo"] == png
    assert photo.params["caption"] == ("<b>Crier weekly report</b>\n\n"
                                       "Sent 12 announcements &lt;all&gt; &amp; 3 polls.")
    assert ref == f"{GROUP}:{api.chat(GROUP)[-1].message_id}"

    long = OutboundMessage(title="Crier weekly report", text="line\n\n" * 400)
    await world.platform.post_report(str(GROUP), long, Attachment("weekly.png", png))
    shown = api.chat(GROUP)
    photo_at = max(i for i, m in enumerate(shown) if m.photo == png)
    assert shown[photo_at].text.startswith("Crier weekly report\n\nline")  # caption filled
    assert sum(m.text.count("line") for m in shown[photo_at:]) == 400  # nothing lost


async def test_telegram_limits_are_the_engines_defaults(world):
    assert world.platform.limits == RateLimits(per_second=30.0, per_conversation=1.0)
    engine = DeliveryEngine(world.db, RENDERERS, {"telegram": world.platform},
                            world.clock)
    throttle = engine.lanes["telegram"].throttle
    assert throttle.interval == pytest.approx(1 / 30)
    assert throttle.conversation_interval == pytest.approx(1.0)
