"""The foundation scenario, through the console adapter as a person would type it."""

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


async def test_draft_approve_deliver_acknowledge_status(console):
    out = await console("/announce to:Engineering ack Please read the new on-call policy")
    # 6 engineers + Erin; the inactive one is not counted.
    assert "will reach 7 people: Engineering 7" in out
    ann = re.search(r"\[submit:(\d+)\] Submit for approval", out).group(1)

    out = await console(f"click submit:{ann}")
    assert "Sent to 3 approvers" in out  # Avery (*), Erin (Engineering), the admin
    assert "(delivered 3 messages)" in out  # the approval requests

    out = await console(f"as {APPROVER.email}\ninbox")
    assert f"[approve:{ann}] Approve" in out
    assert "Casey Morgan asks you to approve" in out

    out = await console(f"click approve:{ann}")
    assert "it goes to 7 people" in out
    # 7 recipients, the outcome to the author, and the two other approvers' requests updated.
    assert "(delivered 10 messages)" in out

    platform = console.platform
    erin_request = [i.message for i in platform.inbox("erin.eng@example.com")
                    if i.message.purpose == "approval"]
    assert erin_request[-1].title.endswith("approved by Avery Chen")
    assert erin_request[-1].buttons == ()
    author_inbox = [i.message.title for i in platform.inbox(COMMS.email)]
    assert f"Announcement #{ann} was approved by Avery Chen" in author_inbox
    for email in ("eng1@example.com", "eng2@example.com", "erin.eng@example.com"):
        texts = [i.message for i in platform.inbox(email)]
        assert any("Please read the new on-call policy" in m.text for m in texts)
        assert any(b.action == f"ack:{ann}" and b.label == "Got it" for m in texts
                   for b in m.buttons)
    assert platform.inbox("gone1@example.com") == []
    assert platform.inbox("sales1@example.com") == []

    out = await console(f"as eng1@example.com\nclick ack:{ann}")
    assert "✓ Acknowledged" in out
    out = await console(f"click ack:{ann}")
    assert "Already acknowledged" in out
    out = await console(f"as eng2@example.com\nclick ack:{ann}")
    assert "✓ Acknowledged" in out
    # The acknowledged message no longer offers the button.
    acked = [i.message for i in platform.inbox("eng2@example.com")
             if i.message.announcement_id == int(ann)]
    assert acked and all(not m.buttons for m in acked)
    assert "✓ Acknowledged" in (acked[-1].footer or "")

    out = await console(f"as {COMMS.email}\n/crier status {ann}")
    assert "Acknowledged 2 of 7" in out
    assert "Engineering: 2 of 7 acknowledged" in out
    assert "Sent 7 of 7" in out
    assert "— sent" in out


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
