"""The seams of the domain: the engine's renderer table and domain events."""

from __future__ import annotations

import logging

import pytest

from announcements.clock import SystemClock
from announcements.compose import RENDERERS
from announcements.delivery import DeliveryEngine
from announcements.events import Approved
from announcements.types import Purpose
from bot.console import ConsolePlatform
from tests.factories import APPROVER, COMMS
from tests.harness import make_chat


def test_the_engine_needs_a_renderer_for_every_purpose(db):
    assert set(RENDERERS) == set(Purpose)
    partial = {p: r for p, r in RENDERERS.items() if p != Purpose.PROGRESS}
    with pytest.raises(ValueError, match="no renderer for purposes progress"):
        DeliveryEngine(db, partial, {"console": ConsolePlatform()}, SystemClock())


async def test_an_approval_stands_when_a_subscriber_fails(db, clock, caplog):
    chat = make_chat(db, clock)
    heard: list[int] = []

    def broken(event: Approved) -> None:
        raise RuntimeError("subscriber down")

    chat.runtime.crier.domain.events.subscribe(Approved, broken).subscribe(
        Approved, lambda e: heard.append(e.announcement_id))
    out = await chat.say(COMMS.email, "/remind to:Sales every:24h Fill in your timesheet")
    ann = int(out.split("submit:")[1].split("]")[0])
    await chat.click(COMMS.email, f"submit:{ann}")
    await chat.tick()
    with caplog.at_level(logging.ERROR, logger="crier.events"):
        reply = await chat.click(APPROVER.email, f"approve:{ann}")
    assert f"Approved #{ann}" in reply  # the approver gets the answer, not a traceback
    assert heard == [ann]  # later subscribers still hear it
    assert "subscriber down" in caplog.text
    # The scheduler (subscribed when the app was built) registered the reminder.
    assert chat.runtime.scheduler.scheduler.has_job(f"reminder:{ann}")
