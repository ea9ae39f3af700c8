"""Categories: opting out of optional ones, mandatory ones reaching everyone, and
the daily cap on optional messages — as people see them on the console."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from announcements import report_view
from bot.console.render import render
from bot.settings import Settings, load_settings
from storage.models import Announcement
from tests.factories import COMMS
from tests.harness import make_chat

TUESDAY_1000_UTC = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def chat(db, clock):
    clock.set(TUESDAY_1000_UTC)
    return make_chat(db, clock)


def titles(chat, email: str, ann: int) -> list[str]:
    return [m.title or "" for m in chat.messages(email, ann)]


async def test_opting_out_of_a_mandatory_category_is_refused_and_says_so(chat):
    out = await chat.say("eng1@example.com", "/crier optout safety")
    assert out.startswith("✗ `safety` is mandatory: everyone receives it, so you cannot "
                          "opt out of it")
    assert "You can opt out of the optional categories: news, social, survey." in out
    assert "safety: mandatory — always received" in await chat.say(
        "eng1@example.com", "/crier preferences")


@pytest.mark.parametrize("line", ["/crier optout parties", "/crier optin parties",
                                  "/announce to:Sales category:parties Cake at 4"])
async def test_an_unknown_category_is_refused_with_the_list(chat, db, line):
    out = await chat.say(COMMS.email, line)
    assert out.startswith("✗ there is no category `parties`")
    assert ("Categories: general (mandatory), safety (mandatory), policy (mandatory), "
            "security (mandatory), social, news, survey.") in out
    with db.session() as s:
        assert s.execute(select(Announcement)).first() is None


async def test_preferences_list_each_category_and_the_persons_choice(chat):
    assert "You will no longer receive social messages" in await chat.say(
        "eng1@example.com", "/crier optout Social")
    out = await chat.say("eng1@example.com", "/crier preferences")
    assert out.splitlines() == [
        "Your message categories:",
        "  general: mandatory — always received",
        "  safety: mandatory — always received",
        "  policy: mandatory — always received",
        "  security: mandatory — always received",
        "  social: optional — opted out (`/crier optin social`)",
        "  news: optional — received (`/crier optout news`)",
        "  survey: optional — received (`/crier optout survey`)",
    ]
    assert "You will receive social messages" in await chat.say(
        "eng1@example.com", "/crier optin social")
    assert "social: optional — received" in await chat.say("eng1@example.com",
                                                           "/crier preferences")


async def test_opted_out_of_social_still_gets_safety_first_sends_reminders_and_nudges(
        chat, clock):
    await chat.say("eng1@example.com", "/crier optout social")
    social = await chat.approved("/announce to:Engineering category:social ack remind:24h "
                                 "Board games on Thursday")
    safety = await chat.approved("/announce to:Engineering category:safety ack remind:24h "
                                 "Fire drill at 11")
    # First sends: the opted-out person gets the safety message only.
    assert titles(chat, "eng1@example.com", social) == []
    assert titles(chat, "eng1@example.com", safety) == ["Announcement from Casey Morgan"]
    assert len(chat.messages("eng3@example.com", social)) == 1
    status = await chat.say(COMMS.email, f"/crier status {social}")
    assert "Category: social" in status and "Opted out: 1 (left out" in status
    # eng3 opts out after the first send: the nudge respects it too.
    await chat.say("eng3@example.com", "/crier optout social")

    clock.advance(timedelta(hours=24))
    await chat.tick()
    assert titles(chat, "eng1@example.com", safety) == [
        "Announcement from Casey Morgan", "Reminder: Announcement from Casey Morgan"]
    assert titles(chat, "eng1@example.com", social) == []
    assert len(chat.messages("eng3@example.com", social)) == 1  # no nudge after opting out
    assert len(chat.messages("eng5@example.com", social)) == 2  # still in: nudged

    # Recurring reminders: each occurrence is sent to the category's audience of the day.
    weekly = await chat.approved("/crier remind to:Engineering every:24h category:social "
                                 "Lunch walk")
    drill = await chat.approved("/crier remind to:Engineering every:24h category:safety "
                                "Check the exits")
    clock.advance(timedelta(hours=24))
    await chat.tick()
    texts = chat.texts("eng1@example.com")
    assert "Check the exits" in texts and "Lunch walk" not in texts
    assert "Lunch walk" in chat.texts("eng5@example.com")
    with chat.runtime.db.session() as s:
        occurrence = s.execute(select(Announcement).where(
            Announcement.parent_id == weekly)).scalar_one()
        assert (occurrence.category, occurrence.opted_out) == ("social", 2)
        assert s.execute(select(Announcement.opted_out).where(
            Announcement.parent_id == drill)).scalar_one() == 0


async def test_a_fourth_optional_message_in_a_day_is_held_and_arrives_the_next_day(
        chat, clock):
    sent = [await chat.approved(f"/announce to:Sales category:news News item {i}")
            for i in (1, 2, 3)]
    fourth = await chat.approved("/announce to:Sales category:social Cake in the kitchen")
    assert all(len(chat.messages("sales1@example.com", a)) == 1 for a in sent)
    assert chat.messages("sales1@example.com", fourth) == []
    status = await chat.say(COMMS.email, f"/crier status {fourth}")
    assert ("Pending: 4 held to a later day (daily cap on optional messages), the first at "
            "Wed 2026-12-02 08:00 Europe/London") in status
    # Opting out reaches copies already queued: sales2's held copy is cancelled, counted.
    await chat.say("sales2@example.com", "/crier optout social")
    status = await chat.say(COMMS.email, f"/crier status {fourth}")
    assert "Opted out: 1 (left out: they opted out of social)" in status
    assert "Pending: 3 held to a later day" in status
    # Mandatory and urgent messages are never capped.
    policy = await chat.approved("/announce to:Sales category:policy New expense policy")
    urgent = await chat.approved("/announce to:Sales category:news urgent Car park closed")
    assert len(chat.messages("sales1@example.com", policy)) == 1
    assert len(chat.messages("sales1@example.com", urgent)) == 1

    clock.set(datetime(2026, 12, 2, 7, 59, tzinfo=UTC))  # 07:59 in London
    await chat.tick()
    assert chat.messages("sales1@example.com", fourth) == []
    clock.set(datetime(2026, 12, 2, 8, 0, tzinfo=UTC))
    await chat.tick()
    assert [m.text for m in chat.messages("sales1@example.com", fourth)] == [
        "Cake in the kitchen"]
    assert chat.messages("sales2@example.com", fourth) == []
    # It took one of Wednesday's three: two more optional ones go out that day, not three.
    wed = [await chat.approved(f"/announce to:Sales category:survey Wednesday {i}")
           for i in (1, 2, 3)]
    assert [len(chat.messages("sales1@example.com", a)) for a in wed] == [1, 1, 0]

    clock.advance(timedelta(minutes=1))
    report = chat.runtime.scheduler.report()
    # Held: Cake's 4 copies on Tuesday, and Wednesday 3 for the 3 who got Cake that day.
    text = render(report_view.message(report_view.build(report)))
    assert "Left out      1 opted out · 7 held for another day (daily cap)" in text


@pytest.mark.parametrize("env, said", [
    ({"CRIER_CATEGORIES": "general!,social"}, "the list lacks survey"),
    ({"CRIER_CATEGORIES": "general!,survey,general"}, "`general` is listed twice"),
    ({"CRIER_CATEGORIES": "general!,survey,fun stuff"}, "`fun stuff` is not a category name"),
    ({"CRIER_OPTIONAL_DAILY_CAP": "0"}, "CRIER_OPTIONAL_DAILY_CAP='0' is not between 1 and 100"),
])
def test_bad_category_settings_are_one_line(env, said):
    with pytest.raises(Exception) as caught:
        load_settings(env, dotenv=False)
    assert said in str(caught.value) and "\n" not in str(caught.value)


async def test_configured_categories_are_the_ones_offered(db, clock):
    chat = make_chat(db, clock, Settings(database_url=str(db.url),
                                         categories="general!,survey,townhall!,sports"))
    out = await chat.say("eng1@example.com", "/crier optout townhall")
    assert "`townhall` is mandatory" in out
    assert "no longer receive sports" in await chat.say("eng1@example.com",
                                                        "/crier optout sports")


async def test_drafts_get_their_kinds_default_category_and_category_is_read_once(chat):
    assert "Category: general" in await chat.say(COMMS.email, "/announce to:Sales Hello")
    assert "Category: survey" in await chat.say(COMMS.email, '/poll to:Sales "Q?" "A" "B"')
    assert "Category: news" in await chat.say(COMMS.email,
                                              "/announce category:NEWS to:Sales Hello")
    out = await chat.say(COMMS.email, "/announce category:news category:social Hi")
    assert out.startswith("✗ `category:` is given twice")
    out = await chat.say(COMMS.email, "/announce categroy:news Hi")
    assert out.startswith("✗ unknown option `categroy:`") and "Did you mean `category:`?" in out


async def test_opting_in_to_a_mandatory_category_says_it_is_always_received(chat):
    out = await chat.say("eng1@example.com", "/crier optin policy")
    assert out == "`policy` is mandatory: you already receive it, as everyone does."


async def test_the_approver_sees_the_category_before_deciding(chat):
    await chat.say(COMMS.email, "/announce to:Sales category:safety Fire drill at 11")
    await chat.click(COMMS.email, "submit:1")
    await chat.tick()
    [request] = chat.messages("avery.approver@example.com", 1)
    assert "Category: safety" in (request.footer or "")
