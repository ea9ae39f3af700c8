"""Recall and edit of sent announcements, and the author's live status message,
through the console as people would type and click."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import timedelta

import pytest
from rich.console import Console
from sqlalchemy import select

from announcements.delivery import EngineConfig, progress
from announcements.types import DeliveryStatus, OutboundMessage
from bot.app import build
from bot.console import ConsolePlatform
from bot.follow import follow
from bot.settings import Settings
from storage.models import AuditEvent, Delivery
from tests.factories import ADMIN, APPROVER, COMMS, ENG_LEAD, seed
from tests.harness import Chat

ENGINEERS = [f"eng{i}@example.com" for i in range(1, 7)] + [ENG_LEAD.email]


def make(db, clock, platform=None, **config) -> Chat:
    seed(db, clock)
    platform = platform or ConsolePlatform()
    runtime = build(Settings(database_url=str(db.url)), {"console": platform}, clock=clock,
                    db=db, engine_config=EngineConfig(**config))
    runtime.scheduler.scheduler.reconcile()
    return Chat(runtime, platform, clock)


@pytest.fixture
def chat(db, clock) -> Chat:
    return make(db, clock)


def copies(chat: Chat, ann: int, email: str) -> list[OutboundMessage]:
    return [i.message for i in chat.platform.inbox(email)
            if i.message.announcement_id == ann and i.message.purpose == "announcement"]


def audit_actions(chat: Chat, ann: int) -> list[str]:
    with chat.runtime.db.session() as s:
        return list(s.execute(select(AuditEvent.action).where(AuditEvent.announcement_id == ann)
                              .order_by(AuditEvent.id)).scalars())


async def test_recall_deletes_every_delivered_copy(chat):
    ann = await chat.approved("/announce to:Engineering ack Office closed Friday")
    assert all(copies(chat, ann, e) for e in ENGINEERS)

    out = await chat.say(COMMS.email, f"/crier recall {ann}")
    assert f"Recalling #{ann}: deleting 7 delivered messages" in out
    assert await chat.tick() == 7
    assert not any(copies(chat, ann, e) for e in ENGINEERS)

    status = await chat.say(COMMS.email, f"/crier status {ann}")
    assert f"Announcement #{ann} — recalled" in status
    assert "Recalled 7 of 7 · deleting 0" in status
    assert "recalled" in audit_actions(chat, ann)
    # A recipient can no longer acknowledge it.
    assert "was not sent to you" in await chat.click("eng1@example.com", f"ack:{ann}")


async def test_only_the_author_or_an_admin_may_recall(chat):
    ann = await chat.approved("/announce to:Engineering Lunch is on us")
    out = await chat.say(ENG_LEAD.email, f"/crier recall {ann}")
    assert f"#{ann} is not yours to recall" in out
    assert "deleting 7" in await chat.say(ADMIN.email, f"/crier recall {ann}")
    assert "already recalled" in await chat.say(COMMS.email, f"/crier recall {ann}")


async def test_a_scheduled_announcement_is_cancelled_not_recalled(chat):
    ann = await chat.approved("/announce to:Engineering at:tomorrow 10:00 Town hall")
    out = await chat.say(COMMS.email, f"/crier recall {ann}")
    assert "has not been sent yet" in out and f"/crier cancel {ann}" in out


async def test_recall_mid_send_cancels_what_is_not_sent_and_deletes_what_is(db, clock):
    gate = asyncio.Event()
    platform = GatedConsole(gate=gate, hold="eng")
    chat = make(db, clock, platform)
    draft = await chat.say(COMMS.email, "/announce to:Engineering Fire drill at 11")
    ann = int(draft.split("submit:")[1].split("]")[0])
    await chat.click(COMMS.email, f"submit:{ann}")
    await chat.tick()
    await chat.click(APPROVER.email, f"approve:{ann}")
    sending = asyncio.create_task(chat.tick())
    await platform.holding.wait()  # copies to engineers are in flight now
    out = await chat.say(COMMS.email, f"/crier recall {ann}")
    assert "Recalling" in out
    gate.set()
    await sending
    await chat.tick()
    # Whatever went out while the recall happened is deleted too.
    assert not any(copies(chat, ann, e) for e in ENGINEERS)
    with db.session() as s:
        left = s.execute(select(Delivery.status).where(
            Delivery.announcement_id == ann, Delivery.purpose == "announcement")).scalars().all()
    assert set(left) <= {DeliveryStatus.RECALLED, DeliveryStatus.CANCELLED}
    assert DeliveryStatus.RECALLED in left


async def test_an_edit_is_approved_again_then_updated_in_place(chat):
    ann = await chat.approved("/announce to:Engineering ack Parking closed on Monday")
    await chat.click("eng1@example.com", f"ack:{ann}")
    await chat.tick()

    out = await chat.say(COMMS.email, f"/crier edit {ann} Parking closed on Tuesday")
    assert "went to 3 approvers" in out  # Avery (*), Erin (Engineering), the admin
    await chat.tick()
    assert copies(chat, ann, "eng2@example.com")[-1].text == "Parking closed on Monday"
    request = chat.messages(APPROVER.email, ann)[-1]
    assert request.text == "Parking closed on Tuesday"
    assert "Now it says: Parking closed on Monday" in request.footer
    approve = next(b.action for b in request.buttons if b.action.startswith("approve-edit:"))

    out = await chat.click(APPROVER.email, approve)
    assert f"Approved the edit of #{ann}: 7 delivered copies will be updated in place" in out
    assert await chat.tick() >= 7
    for email in ENGINEERS:
        [copy] = copies(chat, ann, email)  # the same message, changed in place
        assert copy.text == "Parking closed on Tuesday"
    # eng1 acknowledged before the edit: their copy still says so; others may still confirm.
    assert "✓ Acknowledged" in (copies(chat, ann, "eng1@example.com")[0].footer or "")
    assert copies(chat, ann, "eng2@example.com")[0].buttons[0].action == f"ack:{ann}"
    # The editor hears back; the other approvers' requests are closed.
    assert any("Your edit of Announcement" in (m.title or "") and "approved by Avery Chen"
               in (m.title or "") for m in chat.messages(COMMS.email, ann))
    erin = [m for m in chat.messages(ENG_LEAD.email, ann) if m.purpose == "edit_request"][-1]
    assert erin.buttons == () and "approved by Avery Chen" in erin.title
    status = await chat.say(COMMS.email, f"/crier status {ann}")
    assert "Edited by Casey Morgan, approved by Avery Chen" in status
    edits = [a for a in audit_actions(chat, ann) if a.startswith("edit")]
    assert edits == ["edit_requested", "edit_approved"]


async def test_the_editor_cannot_approve_their_own_edit(chat):
    ann = await chat.approved("/announce to:Engineering Deploy freeze Friday",
                              author=ENG_LEAD.email)
    await chat.say(ADMIN.email, f"/crier edit {ann} Deploy freeze Thursday")
    await chat.tick()
    approve = next(b.action for b in chat.messages(APPROVER.email, ann)[-1].buttons
                   if b.action.startswith("approve-edit"))
    out = await chat.click(ADMIN.email, approve)
    assert f"you wrote this edit of #{ann}, so you cannot decide on it" in out
    # The author is an approver for Engineering and did not write the edit: they may.
    out = await chat.click(ENG_LEAD.email, approve)
    assert "Approved the edit" in out


async def test_a_rejected_edit_changes_nothing_and_tells_the_editor(chat):
    ann = await chat.approved("/announce to:Engineering Canteen opens at 8")
    await chat.say(COMMS.email, f"/crier edit {ann} Canteen opens at 9")
    await chat.tick()
    reject = next(b.action for b in chat.messages(APPROVER.email, ann)[-1].buttons
                  if b.action.startswith("reject-edit"))
    out = await chat.click(APPROVER.email, reject, "Check with facilities first")
    assert "Rejected the edit" in out
    await chat.tick()
    assert copies(chat, ann, "eng3@example.com")[-1].text == "Canteen opens at 8"
    told = chat.messages(COMMS.email, ann)[-1]
    assert "rejected by Avery Chen" in told.title and "Check with facilities first" in told.text


async def test_a_newer_edit_supersedes_the_one_waiting(chat):
    ann = await chat.approved("/announce to:Engineering Standup at 9:30")
    await chat.say(COMMS.email, f"/crier edit {ann} Standup at 9:45")
    await chat.tick()
    first = next(b.action for b in chat.messages(APPROVER.email, ann)[-1].buttons
                 if b.action.startswith("approve-edit"))
    await chat.say(COMMS.email, f"/crier edit {ann} Standup at 10:00")
    await chat.tick()
    assert "replaced by a newer edit" in await chat.click(APPROVER.email, first)
    second = next(b.action for b in chat.messages(APPROVER.email, ann)[-1].buttons
                  if b.action.startswith("approve-edit"))
    assert second != first
    await chat.click(APPROVER.email, second)
    await chat.tick()
    assert copies(chat, ann, "eng4@example.com")[-1].text == "Standup at 10:00"


async def test_edit_refusals_say_what_to_do(chat):
    ann = await chat.approved("/announce to:Engineering Hello")
    assert "already says exactly that" in await chat.say(COMMS.email, f"/crier edit {ann} Hello")
    assert "not yours to edit" in await chat.say("eng1@example.com", f"/crier edit {ann} Hi")
    out = await chat.say(COMMS.email, "/announce to:Engineering Draft text")
    draft = int(out.split("submit:")[1].split("]")[0])
    assert "Draft text v2" in await chat.say(COMMS.email, f"/crier edit {draft} Draft text v2")
    await chat.click(COMMS.email, f"submit:{draft}")
    out = await chat.say(COMMS.email, f"/crier edit {draft} Draft text v3")
    assert "waiting for approval" in out and f"/crier cancel {draft}" in out


# -- live progress ----------------------------------------------------------------------


async def test_the_author_sees_live_progress_at_most_every_interval(db, clock):
    chat = make(db, clock, progress_min_recipients=5, progress_interval=5)
    ann = await chat.approved("/announce to:Engineering ack Read the security policy")
    [status] = [m for m in chat.messages(COMMS.email, ann) if m.purpose == "progress"]
    # It opened when the first copies went out; it updates no sooner than 5 s later.
    assert status.title.startswith(f"Announcement #{ann} — ")
    assert await chat.tick() == 0
    await chat.click("eng1@example.com", f"ack:{ann}")
    clock.advance(timedelta(seconds=5))
    assert await chat.tick() >= 1
    [status] = [m for m in chat.messages(COMMS.email, ann) if m.purpose == "progress"]
    assert status.title == f"Announcement #{ann} — sent"
    assert "Delivery [████████████████████] 100%" in status.text
    assert "Sent 7 of 7 · failed 0 · unreachable 0 · pending 0" in status.text
    # /crier status shows the same numbers.
    out = await chat.say(COMMS.email, f"/crier status {ann}")
    for line in status.text.splitlines():
        if line.startswith(("Delivery", "Sent")):
            assert line in out


def test_the_status_message_estimates_the_time_left_from_the_pace_so_far():
    # 1,200 of 13,200 sent in 100 s (12/s): 12,000 more take about 17 minutes.
    sending = progress.Progress(total=13_300, delivered=1_200, unreachable=100, pending=12_000)
    assert progress.time_left(sending, 100.0) == ["About 17 min left"]
    slow = progress.Progress(total=20_000, delivered=100, pending=19_900)
    assert progress.time_left(slow, 60.0) == ["About 3 h 19 min left"]
    assert progress.time_left(progress.Progress(total=5, delivered=5), 9.0) == []
    assert progress.time_left(progress.Progress(total=5, pending=5), 9.0) == []  # no pace yet


async def test_small_sends_get_no_status_message(chat):
    ann = await chat.approved("/announce to:Engineering Tiny")
    assert not [m for m in chat.messages(COMMS.email, ann) if m.purpose == "progress"]


async def test_audit_has_every_delivery_transition(db, clock):
    chat = make(db, clock)
    ann = await chat.approved("/announce to:Engineering at:in 10m Coffee")
    clock.advance(timedelta(minutes=10))
    await chat.tick()
    actions = audit_actions(chat, ann)
    assert actions[-2:] == ["sending", "sent"]
    with db.session() as s:
        detail = s.execute(select(AuditEvent.detail).where(
            AuditEvent.announcement_id == ann, AuditEvent.action == "sent")).scalar_one()
    assert json.loads(detail) == {"by": "delivery engine"}


class GatedConsole(ConsolePlatform):
    """Holds sends to addresses starting with ``hold`` until ``gate`` opens."""

    def __init__(self, gate: asyncio.Event, hold: str) -> None:
        super().__init__()
        self.gate, self.hold, self.holding = gate, hold, asyncio.Event()

    async def send(self, address: str, message: OutboundMessage) -> str:
        if address.startswith(self.hold) and message.purpose == "announcement":
            self.holding.set()
            await self.gate.wait()
        return await super().send(address, message)


async def test_follow_shows_a_cli_progress_bar_until_the_send_is_done(db, clock):
    chat = make(db, clock)
    out = await chat.say(COMMS.email, "/announce to:Engineering ack Badge renewal")
    ann = int(out.split("submit:")[1].split("]")[0])
    await chat.click(COMMS.email, f"submit:{ann}")
    await chat.tick()
    await chat.click(APPROVER.email, f"approve:{ann}")  # queued; nothing sent yet
    screen = io.StringIO()
    stop = asyncio.Event()
    engine = asyncio.create_task(chat.runtime.engine.run(stop))
    try:
        final = await asyncio.wait_for(
            follow(chat.runtime, ann, console=Console(file=screen, width=120), poll=0.05), 10)
    finally:
        stop.set()
        await engine
    assert (final.sent, final.total, final.pending) == (7, 7, 0)
    assert f"#{ann} sent" in screen.getvalue() or f"#{ann} sending" in screen.getvalue()
    assert "7/7" in screen.getvalue()
