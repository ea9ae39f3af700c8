"""Proactive delivery to Teams through the delivery engine: Retry-After pauses the
tenant's lane, 412/502 are retried, a removed app is unreachable, the connector's
per-conversation limit is never hit, and the app's credentials come from the
token endpoint (a wrong password is one clear line)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from announcements.delivery.throttle import Throttle
from announcements.ports import RateLimited, TransientError, Unreachable
from announcements.types import OutboundMessage
from bot.teams.platform import TEAMS_LIMITS, ConversationRef, make_platform
from bot.teams.tokens import BOT_SCOPE, CredentialsRefused, TokenProvider
from storage.models import Delivery
from tests.factories import APPROVER, COMMS, company, seed
from tests.fakes.teams_connector import FakeConnector
from tests.fakes.teams_identity import APP_ID, PASSWORD, FakeIdentity
from tests.fakes.teams_world import TeamsWorld, settings_for, teams_world

ENG1 = "eng1@example.com"


@pytest.fixture
async def world(db, clock) -> AsyncIterator[TeamsWorld]:
    people = company()
    seed(db, clock, people)
    async with teams_world(db, clock) as w:
        for person in people:
            if person.active:
                await w.install(person.email)
        yield w


async def submitted(world: TeamsWorld, line: str) -> int:
    preview = await world.say(COMMS.email, line)
    ann = int(preview[0].text.split("#")[1].split()[0])
    await world.click(COMMS.email, f"submit:{ann}")
    await world.deliver()
    await world.click(APPROVER.email, f"approve:{ann}")
    return ann


def statuses(db, ann: int) -> dict[str, int]:
    with db.session() as s:
        rows = s.execute(select(Delivery.status).where(
            Delivery.announcement_id == ann, Delivery.purpose == "announcement")).scalars()
        out: dict[str, int] = {}
        for status in rows:
            out[status] = out.get(status, 0) + 1
        return out


async def test_429_pauses_the_lane_for_retry_after_then_delivers(world: TeamsWorld, db, clock):
    ann = await submitted(world, "announce to:Engineering Heads up")
    world.connector.fail(429, retry_after=2, method="POST")
    await world.deliver()
    lane = world.runtime.engine.lanes["teams"]
    assert lane.rate_limited == 1 and lane.throttle.pauses == 1
    assert statuses(db, ann) == {"delivered": 6, "pending": 1}
    status = (await world.say(COMMS.email, f"crier status {ann}"))[0].text
    assert "1 waiting for Retry-After" in status
    clock.advance(timedelta(seconds=3))
    await world.deliver()
    assert statuses(db, ann) == {"delivered": 7}


@pytest.mark.parametrize("code", [412, 502, 504])
async def test_412_and_5xx_are_retried(world: TeamsWorld, db, clock, code: int):
    ann = await submitted(world, "announce to:Engineering Heads up")
    world.connector.fail(code, method="POST")
    await world.deliver()
    assert statuses(db, ann) == {"delivered": 6, "pending": 1}
    clock.advance(timedelta(minutes=1))
    await world.deliver()
    assert statuses(db, ann) == {"delivered": 7}


async def test_a_removed_app_is_unreachable_not_retried(world: TeamsWorld, db, clock):
    ann = await submitted(world, "announce to:Engineering Heads up")
    world.connector.fail(403, method="POST")
    await world.deliver()
    assert statuses(db, ann) == {"delivered": 6, "unreachable": 1}


async def test_recall_deletes_the_cards(world: TeamsWorld, db):
    ann = await submitted(world, "announce to:Engineering Wrong date")
    await world.deliver()
    assert any("Wrong date" in a.text for a in world.chat(ENG1))
    said = await world.say(COMMS.email, f"crier recall {ann}")
    assert said, "the author hears back"
    await world.deliver()
    assert not any("Wrong date" in a.text for a in world.chat(ENG1))


async def test_paced_sends_stay_under_the_per_conversation_limit():
    async with FakeIdentity() as identity, FakeConnector(identity) as connector:
        platform = make_platform(settings_for(identity))
        throttle = Throttle(TEAMS_LIMITS)
        ref = ConversationRef(connector.service_url, "a:busy", identity.tenant).dumps()
        started = time.monotonic()
        try:
            for i in range(15):
                await throttle.acquire(ref)
                await platform.send(ref, OutboundMessage(text=f"Message {i}"))
        finally:
            await platform.stop()
        assert connector.throttled == 0
        assert len(connector.chat("a:busy")) == 15
        assert time.monotonic() - started >= 14 / TEAMS_LIMITS.per_conversation - 0.1


async def test_unpaced_sends_meet_the_connectors_429():
    async with FakeIdentity() as identity, FakeConnector(identity) as connector:
        platform = make_platform(settings_for(identity))
        ref = ConversationRef(connector.service_url, "a:busy", identity.tenant).dumps()
        try:
            with pytest.raises(RateLimited) as caught:
                for i in range(10):
                    await platform.send(ref, OutboundMessage(text=f"Message {i}"))
        finally:
            await platform.stop()
        assert caught.value.retry_after == 1


async def test_no_conversation_reference_is_unreachable():
    async with FakeIdentity() as identity:
        platform = make_platform(settings_for(identity))
        with pytest.raises(Unreachable, match="not installed"):
            await platform.send("00000000-0000-4000-8000-000000000001",
                                OutboundMessage(text="Hi"))
        await platform.stop()


async def test_a_wrong_app_password_is_one_clear_line_without_the_password():
    async with FakeIdentity() as identity, httpx.AsyncClient() as http:
        tokens = TokenProvider(identity.token_url, APP_ID, "wrong-secret", http)
        with pytest.raises(CredentialsRefused) as caught:
            await tokens.token(BOT_SCOPE)
        words = caught.value.message + (caught.value.hint or "")
        assert "AADSTS7000215" in words and "TEAMS_APP_PASSWORD" in words
        assert "wrong-secret" not in words and "\n" not in caught.value.message
        assert "wrong-secret" not in repr(tokens)
        good = TokenProvider(identity.token_url, APP_ID, PASSWORD, http)
        first = await good.token(BOT_SCOPE)
        assert await good.token(BOT_SCOPE) == first  # cached
        asked = identity.token_requests[-1]
        assert asked["grant_type"] == "client_credentials" and asked["scope"] == BOT_SCOPE


async def test_sending_with_a_wrong_password_is_retried_not_crashed():
    async with FakeIdentity() as identity, FakeConnector(identity) as connector:
        platform = make_platform(settings_for(identity, teams_app_password="wrong-secret"))
        ref = ConversationRef(connector.service_url, "a:x", identity.tenant).dumps()
        with pytest.raises(TransientError, match="refused the Teams app credentials"):
            await platform.send(ref, OutboundMessage(text="Hi"))
        await platform.stop()


async def test_start_up_logs_a_wrong_password_in_one_line(db, clock, caplog):
    seed(db, clock)
    caplog.set_level(logging.ERROR, "crier.teams")
    async with teams_world(db, clock, teams_app_password="wrong-secret"):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "crier.teams"]
    assert len(lines) == 1 and "refused the Teams app credentials" in lines[0]
    assert "wrong-secret" not in lines[0] and not any(r.exc_info for r in caplog.records)

