"""Console-specific checks; the foundation scenario on every platform is tests/test_scenario.py."""

from __future__ import annotations

import io
import re

import pytest

from bot.app import build
from bot.console import ConsolePlatform, ConsoleSession
from bot.settings import Settings
from tests.factories import APPROVER, COMMS, seed


@pytest.fixture
def console(db, clock):
    seed(db, clock)
    platform = ConsolePlatform()
    rt = build(Settings(database_url=str(db.url)), {"console": platform}, clock=clock, db=db)
    out = io.StringIO()
    session = ConsoleSession(rt.router, platform, rt.engine, COMMS.email, out,
                             scheduler=rt.scheduler)

    async def run(script: str) -> str:
        start = out.tell()
        await session.run(script.strip().splitlines())
        return out.getvalue()[start:]

    run.platform = platform  # type: ignore[attr-defined]
    return run


async def test_approver_cannot_approve_own_draft(console):
    out = await console("as erin.eng@example.com\n/announce to:Engineering Deploy freeze Friday")
    ann = re.search(r"submit:(\d+)", out).group(1)
    out = await console(f"click submit:{ann}\nclick approve:{ann}")
    assert "you wrote #" in out and "cannot approve" in out
    out = await console(f"/crier status {ann}")
    assert "pending approval" in out


async def test_recipient_cannot_ack_what_was_not_sent_to_them(console):
    out = await console("/announce to:Sales ack Quarter close")
    ann = re.search(r"submit:(\d+)", out).group(1)
    await console(f"click submit:{ann}\nas {APPROVER.email}\nclick approve:{ann}")
    out = await console(f"as eng1@example.com\nclick ack:{ann}")
    assert f"#{ann} was not sent to you" in out
