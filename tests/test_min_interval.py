"""Issue 13.6: a recurring send repeats no more often than CRIER_MIN_INTERVAL
(default 1h). Refused when drafted, with the minimum and an example; nothing
is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from announcements.errors import CrierError
from bot.app import build
from bot.console import ConsolePlatform
from bot.settings import Settings, load_settings
from storage.models import Announcement
from tests.factories import COMMS
from tests.harness import make_chat


def drafts(db) -> int:
    with db.session() as s:
        return s.execute(select(func.count()).select_from(Announcement)).scalar_one()


@pytest.mark.parametrize("line, shown", [
    ("/remind to:all every:1m Drink water", "`every:1m` repeats every 1m"),
    ("/remind to:Sales every:*/15 * * * * Check the queue", "repeats every 15m"),
    ("/remind to:Sales every:0,30 9 * * 1 Stand-up", "repeats every 30m"),
    ("/announce to:Sales ack remind:10m Read the policy", "`remind:10m` repeats every 10m"),
])
async def test_too_frequent_recurring_sends_are_refused(db, clock, line, shown):
    chat = make_chat(db, clock)
    out = await chat.say(COMMS.email, line)
    assert out.startswith("✗"), out
    assert shown in out
    assert "at most once every 1h" in out  # names the minimum
    assert ":1h`" in out and "mon 09:00" in out  # and examples that work
    assert drafts(db) == 0  # nothing half-written


async def test_the_minimum_itself_and_slower_schedules_are_accepted(db, clock):
    chat = make_chat(db, clock)
    for line in ("/remind to:Sales every:1h Hourly check",
                 "/remind to:Sales every:weekday 17:00 Timesheets",
                 "/remind to:Sales every:0 9-17 * * 1-5 On the hour",
                 "/announce to:Sales ack remind:24h Read the policy"):
        out = await chat.say(COMMS.email, line)
        assert "submit:" in out, out
    assert drafts(db) == 4


async def test_the_minimum_is_configurable(db, clock):
    settings = Settings(database_url=str(db.url), min_interval="15m")
    chat = make_chat(db, clock, settings)
    assert "submit:" in await chat.say(COMMS.email, "/remind to:Sales every:15m Queue check")
    out = await chat.say(COMMS.email, "/remind to:Sales every:5m Queue check")
    assert "at most once every 15m" in out and "`every:15m`" in out


def test_a_bad_minimum_is_one_clear_line(db):
    settings = load_settings({"CRIER_DATABASE_URL": str(db.url),
                              "CRIER_MIN_INTERVAL": "often"}, dotenv=False)
    with pytest.raises(CrierError) as refused:
        build(settings, {"console": ConsolePlatform()}, db=db)
    assert "CRIER_MIN_INTERVAL='often'" in str(refused.value)
    assert "1h" in (refused.value.hint or "")
