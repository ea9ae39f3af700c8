"""Fallback across platforms, over the fake Slack and Telegram APIs: a person Slack
cannot reach is sent the announcement on Telegram; a person reachable nowhere is
counted once as unreachable."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, insert, select

from announcements import views
from announcements.clock import ManualClock, SystemClock
from announcements.compose import RENDERERS
from announcements.delivery import DeliveryEngine, fallback, progress
from announcements.delivery.fanout import Channels
from announcements.domain import Domain, DomainConfig
from announcements.lifecycle import Crier
from announcements.ports import RateLimits
from announcements.types import DraftRequest, Kind, Person
from bench.harness import MARKER, broadcast, populate, user_id
from bot.settings import Settings
from bot.slack.platform import make_platform as slack_platform
from bot.telegram import make_platform as telegram_platform
from storage.models import Announcement, Delivery, Identity
from tests.factories import APPROVER, COMMS, company, seed
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_world import settings_for

BOTH = Channels(enabled=("slack", "telegram"), order=("slack", "telegram"),
                by_email=frozenset())


async def test_unreachable_on_slack_reached_on_telegram_and_nobody_looped(db):
    people = populate(db, 5)  # 0 the author; all on Slack
    chats = {people[2]: 7002, people[3]: 7003}  # 2 and 3 also linked on Telegram
    with db.session() as s:
        s.execute(insert(Identity), [
            {"person_id": pid, "platform": "telegram", "platform_user_id": str(chat),
             "address": str(chat), "linked_at": datetime.now(UTC)}
            for pid, chat in chats.items()])
    ann, _ = broadcast(db, people, channels=BOTH)
    with FakeSlackAPI() as slack_api, FakeTelegramAPI() as tg_api:
        for i in (2, 3, 4):  # deactivated in Slack
            slack_api.make_unreachable(user_id(i))
        tg_api.block(7003)  # and 3 blocked the bot on Telegram too
        slack = slack_platform(Settings(slack_bot_token=slack_api.token,
                                        slack_signing_secret="x", slack_api_url=slack_api.url))
        slack.limits = RateLimits(0, 0)
        telegram = telegram_platform(settings_for(tg_api, db))
        telegram.limits = RateLimits(0, 0)
        for p in (slack, telegram):
            await p.start()
        engine = DeliveryEngine(db, RENDERERS, {"slack": slack, "telegram": telegram},
                                SystemClock(), channels=BOTH)
        await engine.drain()
        for p in (slack, telegram):
            await p.stop()
        on_slack = {i: [m.text for m in slack_api.messages(user_id(i)) if MARKER in m.text]
                    for i in range(5)}
        on_telegram = {c: [m.text for m in tg_api.chat(c) if MARKER in (m.text or "")]
                       for c in (7002, 7003)}
    assert [len(on_slack[i]) for i in range(5)] == [1, 1, 0, 0, 0]
    assert [len(on_telegram[c]) for c in (7002, 7003)] == [1, 0]
    with db.session() as s:
        rows = sorted(s.execute(select(Delivery.person_id, Delivery.platform, Delivery.status)
                                .where(Delivery.announcement_id == ann)).tuples().all())
        counts = progress.snapshot(s, ann)
        said = fallback.lines(s, ann)
        author = Person(people[0], "p0@bench.example", "Person 0", "Dept 0")
        shown = views.status(s, author, ann)  # what /crier status ID answers
    assert ("telegram", "delivered") in {(pl, st) for pid, pl, st in rows if pid == people[2]}
    # Everyone counted once: 3 delivered (one of them on Telegram), 2 unreachable.
    assert (counts.total, counts.delivered, counts.unreachable) == (5, 3, 2)
    assert said == ["Reached 1 on Telegram after Slack failed"]
    assert "Sent 3 of 5 · failed 0 · unreachable 2 · pending 0" in shown
    assert "Reached 1 on Telegram after Slack failed" in shown
    # Person 3 ran out of platforms: one unreachable row, on the last one tried.
    assert [(pl, st) for pid, pl, st in rows if pid == people[3]] == [
        ("slack", "cancelled"), ("telegram", "unreachable")]


async def test_an_approval_request_falls_back_and_the_approver_decides_on_telegram(db):
    """The only approver deactivated in Slack still gets the approval request, on
    Telegram, with its buttons; approving there brings the author the outcome."""
    clock = ManualClock(datetime.now(UTC))
    seed(db, clock, [COMMS, APPROVER] + company(engineers=0, sales=3, inactive_engineers=0)[4:],
         identities={COMMS.email: {"slack": "U0COMMS"},
                     APPROVER.email: {"slack": "U0AVERY", "telegram": "7100"},
                     **{f"sales{i}@example.com": {"slack": f"U0SALES{i}"} for i in (1, 2, 3)}})
    crier = Crier(Domain(db, clock, DomainConfig(channels=BOTH)))
    author, approver = crier.person(COMMS.email), crier.person(APPROVER.email)
    assert author is not None and approver is not None
    crier.draft(author, DraftRequest(Kind.MESSAGE, "Quarterly numbers are out", audience="Sales"))
    with db.session() as s:
        ann = s.execute(select(func.max(Announcement.id))).scalar_one()
    crier.submit(author, ann)
    with FakeSlackAPI() as slack_api, FakeTelegramAPI() as tg_api:
        slack_api.make_unreachable("U0AVERY")
        slack = slack_platform(Settings(slack_bot_token=slack_api.token,
                                        slack_signing_secret="x", slack_api_url=slack_api.url))
        telegram = telegram_platform(settings_for(tg_api, db))
        for p in (slack, telegram):
            p.limits = RateLimits(0, 0)
            await p.start()
        engine = DeliveryEngine(db, RENDERERS, {"slack": slack, "telegram": telegram}, clock,
                                channels=BOTH)
        await engine.drain()
        [request] = tg_api.chat(7100)
        assert ("Approve", f"approve:{ann}") in request.buttons, request.buttons
        crier.approve(approver, ann)
        await engine.drain()
        for p in (slack, telegram):
            await p.stop()
        told = [m.visible for m in slack_api.messages("U0COMMS")]
        got = [len(slack_api.messages(f"U0SALES{i}")) for i in (1, 2, 3)]
    assert any("approved" in t.lower() for t in told), told
    assert got == [1, 1, 1]
    with db.session() as s:
        rows = s.execute(select(Delivery.platform, Delivery.status).where(
            Delivery.announcement_id == ann, Delivery.purpose == "approval")).tuples().all()
    assert sorted(rows) == [("slack", "cancelled"), ("telegram", "delivered")]
