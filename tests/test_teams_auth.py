"""``POST /api/messages`` refuses every request the Bot Framework did not sign for
this app and tenant: 401/403, nothing processed, nothing sent."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from tests.factories import COMMS, seed
from tests.fakes.teams_world import TeamsWorld, teams_world


@pytest.fixture
async def world(db, clock) -> AsyncIterator[TeamsWorld]:
    seed(db, clock)
    async with teams_world(db, clock) as w:
        await w.install(COMMS.email)
        yield w


def typed(world: TeamsWorld) -> dict:
    return world.activity(COMMS.email, "message", text="crier help")


async def refused(world: TeamsWorld, status: int, **kw) -> None:
    before = len(world.chat(COMMS.email))
    response = await world.post(typed(world), **kw)
    assert response.status_code == status, response.text
    assert len(world.chat(COMMS.email)) == before  # nothing answered, nothing sent


async def test_a_signed_request_is_answered(world: TeamsWorld):
    said = await world.say(COMMS.email, "crier help")
    assert "Crier commands" in said[0].text


async def test_no_token(world: TeamsWorld):
    await refused(world, 401, authorization="")


async def test_not_a_bearer_token(world: TeamsWorld):
    await refused(world, 401, authorization="Basic Zm9vOmJhcg==")


async def test_expired_beyond_the_skew(world: TeamsWorld):
    now = int(time.time())
    token = world.identity.mint(world.connector.service_url, exp=now - 301, nbf=now - 3600)
    await refused(world, 401, token=token)


async def test_expired_within_the_skew_is_accepted(world: TeamsWorld):
    now = int(time.time())
    token = world.identity.mint(world.connector.service_url, exp=now - 200, nbf=now - 3600)
    response = await world.post(typed(world), token)
    assert response.status_code == 200


async def test_not_yet_valid(world: TeamsWorld):
    now = int(time.time())
    token = world.identity.mint(world.connector.service_url, nbf=now + 600, iat=now + 600)
    await refused(world, 401, token=token)


async def test_signed_by_another_key(world: TeamsWorld):
    token = world.identity.mint(world.connector.service_url, key=world.identity.stranger_key)
    await refused(world, 401, token=token)


async def test_another_key_claiming_an_unknown_kid(world: TeamsWorld):
    token = world.identity.mint(world.connector.service_url, key=world.identity.stranger_key,
                                kid="forged")
    await refused(world, 401, token=token)


async def test_wrong_audience(world: TeamsWorld):
    token = world.identity.mint(world.connector.service_url,
                                aud="99999999-2222-3333-4444-555555555555")
    await refused(world, 401, token=token)


async def test_wrong_issuer(world: TeamsWorld):
    token = world.identity.mint(world.connector.service_url, iss="https://sts.example.com")
    await refused(world, 401, token=token)


async def test_service_url_differs_from_the_token(world: TeamsWorld):
    token = world.identity.mint("https://smba.trafficmanager.net/emea/")
    await refused(world, 403, token=token)


async def test_activity_from_another_tenant(world: TeamsWorld):
    activity = typed(world)
    activity["channelData"] = {"tenant": {"id": "ffffffff-bbbb-cccc-dddd-eeeeeeeeeeee"}}
    before = len(world.chat(COMMS.email))
    response = await world.post(activity)
    assert response.status_code == 403
    assert len(world.chat(COMMS.email)) == before


async def test_a_rotated_key_is_fetched_again(world: TeamsWorld):
    world.server.validator.refetch_after = 0
    fetches = world.identity.jwks_fetches
    world.identity.rotate()
    said = await world.say(COMMS.email, "crier help")
    assert "Crier commands" in said[0].text
    assert world.identity.jwks_fetches == fetches + 1
    await world.say(COMMS.email, "crier help")
    assert world.identity.jwks_fetches == fetches + 1  # cached
