"""Escalation of urgent acknowledgements (``escalate:DURATION``), over the fake Slack
and Telegram APIs: people who have not acknowledged get the announcement on their
next platform; an acknowledgement on any copy counts once and updates every copy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from announcements import views
from announcements.clock import ManualClock
from announcements.compose import RENDERERS
from announcements.delivery import DeliveryEngine
from announcements.delivery.fanout import Channels
from announcements.domain import Domain, DomainConfig
from announcements.lifecycle import Crier
from announcements.ports import RateLimits
from announcements.types import OutboundMessage, Person
from bench.harness import MARKER, broadcast, populate, user_id
from bot.settings import Settings
from bot.slack.platform import make_platform as slack_platform
from bot.telegram import make_platform as telegram_platform
from bot.telegram.platform import TelegramPlatform
from storage.db import Database
from storage.models import Announcement, Delivery, Identity, Receipt
from tests.factories import COMMS
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_world import settings_for
from tests.harness import make_chat


@pytest.fixture
def chat(db, clock):  # type: ignore[no-untyped-def]
    return make_chat(db, clock)


BOTH = Channels(enabled=("slack", "telegram"), order=("slack", "telegram"),
                by_email=frozenset())


@pytest.mark.parametrize(("line", "says"), [
    ("/announce to:Engineering urgent ack escalate:30s Fire drill",
     "`escalate:` must be between 1 minute and 1 week"),
    ("/announce to:Engineering urgent ack escalate:8d Fire drill",
     "`escalate:` must be between 1 minute and 1 week"),
    ("/announce to:Engineering ack escalate:30m Fire drill",
     "`escalate:` is for urgent announcements that ask for an acknowledgement"),
    ("/announce to:Engineering urgent ack escalate:soon Fire drill",
     "cannot read `escalate:soon` as a duration"),
])
async def test_a_bad_escalation_is_refused_with_what_to_type(chat, line, says):
    out = await chat.say(COMMS.email, line)
    assert out.startswith("✗ ") and says in out, out
    assert "escalate:30m" in out  # the example to type instead


async def test_a_good_escalation_is_drafted(chat, db):
    out = await chat.say(COMMS.email, "/announce to:Engineering urgent ack escalate:30m Drill")
    assert "submit:" in out, out
    with db.session() as s:
        assert s.execute(select(Announcement.escalate_after)).scalar_one() == 1800


@dataclass
class World:
    db: Database
    clock: ManualClock
    slack: FakeSlackAPI
    telegram: FakeTelegramAPI
    engine: DeliveryEngine
    crier: Crier
    people: list[int]
    ann: int

    def person(self, i: int) -> Person:
        return Person(self.people[i], f"p{i}@bench.example", f"Person {i}", f"Dept {i % 10}")

    def ref(self, i: int, platform: str) -> str:
        with self.db.session() as s:
            return s.execute(select(Delivery.message_ref).where(
                Delivery.announcement_id == self.ann, Delivery.person_id == self.people[i],
                Delivery.platform == platform)).scalar_one()

    def on_telegram(self, chat: int) -> list[str]:
        return [m.text or "" for m in self.telegram.chat(chat) if MARKER in (m.text or "")]


@asynccontextmanager
async def escalating(db: Database, telegram_cls: type[TelegramPlatform] = TelegramPlatform
                ) -> AsyncIterator[World]:
    """Four people on Slack (0 the author); 1 and 2 also on Telegram (chats 7001, 7002);
    an urgent announcement asking for acknowledgement, escalating after 30 minutes."""
    people = populate(db, 4)
    with db.session() as s:
        s.execute(insert(Identity), [
            {"person_id": people[i], "platform": "telegram", "platform_user_id": str(7000 + i),
             "address": str(7000 + i), "linked_at": datetime.now(UTC)} for i in (1, 2)])
    ann, _ = broadcast(db, people, channels=BOTH)
    clock = ManualClock(datetime.now(UTC) + timedelta(seconds=1))
    with db.session() as s:
        s.execute(update(Announcement).where(Announcement.id == ann).values(
            urgent=True, escalate_after=1800))
    with FakeSlackAPI() as slack_api, FakeTelegramAPI() as tg_api:
        slack = slack_platform(Settings(slack_bot_token=slack_api.token,
                                        slack_signing_secret="x", slack_api_url=slack_api.url))
        telegram = telegram_cls(telegram_platform(settings_for(tg_api, db)).bot)
        for p in (slack, telegram):
            p.limits = RateLimits(0, 0)
            await p.start()
        engine = DeliveryEngine(db, RENDERERS, {"slack": slack, "telegram": telegram}, clock,
                                channels=BOTH)
        crier = Crier(Domain(db, clock, DomainConfig(channels=BOTH)))
        try:
            yield World(db, clock, slack_api, tg_api, engine, crier, people, ann)
        finally:
            for p in (slack, telegram):
                await p.stop()


def receipts(db: Database, ann: int, person: int) -> int:
    with db.session() as s:
        return s.execute(select(func.count()).select_from(Receipt).where(
            Receipt.announcement_id == ann, Receipt.person_id == person)).scalar_one()


async def test_unacknowledged_people_get_it_on_their_next_platform(db):
    async with escalating(db) as w:
        await w.engine.drain()
        w.crier.acknowledge(w.person(1), w.ann, w.ref(1, "slack"))
        w.clock.advance(timedelta(minutes=29))
        await w.engine.drain()
        assert w.on_telegram(7002) == []  # not yet
        w.clock.advance(timedelta(minutes=1))
        await w.engine.drain()
        assert w.on_telegram(7001) == []  # acknowledged in time
        assert len(w.on_telegram(7002)) == 1  # escalated to Telegram
        # 2 acknowledges on Telegram: one receipt, and the Slack copy says so too.
        w.crier.acknowledge(w.person(2), w.ann, w.ref(2, "telegram"))
        await w.engine.drain()
        assert receipts(db, w.ann, w.people[2]) == 1
        [slack_copy] = [m for m in w.slack.messages(user_id(2)) if MARKER in m.text]
        shown_on_slack = str(slack_copy.blocks or slack_copy.text)
        assert "✓ Acknowledged" in shown_on_slack and "on Telegram" in shown_on_slack
        with db.session() as s:
            shown = views.status(s, w.person(0), w.ann)
        w.clock.advance(timedelta(hours=2))
        assert await w.engine.drain() == 0  # escalated once, never again
    assert "Escalated to 1 on their next platform: Person 2" in shown
    assert "Acknowledged since: 1 of 1 (Person 2 on Telegram)" in shown


class AckWhileSending(TelegramPlatform):
    """Telegram, where person 2 clicks "Got it" on the Slack copy just as the
    escalated copy goes out."""

    world: World | None = None

    async def send(self, address: str, message: OutboundMessage) -> str:
        ref = await super().send(address, message)
        w = self.world
        if w is not None and address == "7002":
            await asyncio.to_thread(w.crier.acknowledge, w.person(2), w.ann, w.ref(2, "slack"))
        return ref


async def test_an_acknowledgement_while_the_escalated_copy_is_sent_counts_once(db):
    async with escalating(db, AckWhileSending) as w:
        telegram = w.engine.lanes["telegram"].platform
        assert isinstance(telegram, AckWhileSending)
        telegram.world = w
        await w.engine.drain()
        w.clock.advance(timedelta(minutes=30))
        await w.engine.drain()
        assert receipts(db, w.ann, w.people[2]) == 1
        # The escalated copy went out with its button; it is then updated to say so.
        [copy] = [m for m in w.telegram.chat(7002) if MARKER in (m.text or "")]
        assert "✓ Acknowledged" in (copy.text or "") and "on Slack" in (copy.text or ""), copy.text
        w.crier.acknowledge(w.person(2), w.ann, w.ref(2, "telegram"))  # a second click
        assert receipts(db, w.ann, w.people[2]) == 1
