"""Fixtures shared by the platform tests: each fake API on 127.0.0.1, and a
workspace of the test company linked to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.factories import company, seed
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_events import identities, slack_chat
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_world import TelegramWorld, linked_world


@pytest.fixture
def api() -> Iterator[FakeTelegramAPI]:
    """A fake Telegram Bot API."""
    with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
async def world(db, clock, api) -> AsyncIterator[TelegramWorld]:
    """The test company with its people linked on the fake Telegram."""
    async with linked_world(db, clock, api) as w:
        yield w


@pytest.fixture
async def slack(db, clock):
    """The test company in a fake Slack workspace (unpaced; see test_slack_scenario)."""
    seed(db, clock, company(), identities())
    with FakeSlackAPI() as fake:
        async with slack_chat(db, clock, fake) as chat:
            yield chat
