"""Supervised background tasks (bot.supervision): a crashed task is logged with its
traceback and restarted with backoff; /healthz says `degraded` while it is down and
/metrics counts the restarts."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from starlette.testclient import TestClient

from announcements.types import Purpose
from bot.server import create_app
from bot.supervision import Supervisor
from tests.factories import APPROVER, COMMS
from tests.harness import make_chat


async def test_a_crashing_task_is_restarted_with_growing_backoff(caplog):
    supervisor = Supervisor(backoff_base=0.05, backoff_cap=0.2)
    runs: list[float] = []

    async def flaky(stop: asyncio.Event) -> None:
        runs.append(time.monotonic())
        if len(runs) <= 3:
            raise RuntimeError(f"boom {len(runs)}")
        await stop.wait()

    state = supervisor.add("flaky", flaky)
    stop = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="crier.supervision"):
        supervisor.start(stop)
        await asyncio.sleep(0.06)
        assert not state.up and "crashed: RuntimeError: boom" in state.reason
        assert supervisor.down() == {"flaky": state.reason}
        for _ in range(100):
            if len(runs) == 4 and state.up:
                break
            await asyncio.sleep(0.02)
    assert state.up and state.restarts == 3 and supervisor.down() == {}
    gaps = [b - a for a, b in zip(runs, runs[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2  # doubled each time
    crashes = [r for r in caplog.records if "flaky crashed" in r.getMessage()]
    assert len(crashes) == 3 and all(r.exc_info for r in crashes)  # with the traceback
    await supervisor.stop()
    assert state.reason == "stopped" and not state.up


async def test_a_task_that_ends_by_itself_is_restarted():
    supervisor = Supervisor(backoff_base=0.01)
    runs = 0

    async def quits(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs > 1:
            await stop.wait()

    state = supervisor.add("quits", quits)
    supervisor.start()
    for _ in range(100):
        if state.up and runs == 2:
            break
        await asyncio.sleep(0.01)
    assert runs == 2 and state.restarts == 1
    await supervisor.stop()


def _metric(text: str, name: str) -> float:
    line = next(x for x in text.splitlines() if x.startswith(name))
    return float(line.rsplit(" ", 1)[1])


@pytest.mark.slow
async def test_the_engine_raising_is_restarted_and_health_is_degraded_meanwhile(db, clock):
    chat = make_chat(db, clock)
    out = await chat.say(COMMS.email, "/announce to:Sales Numbers are in")
    ann = int(out.split("submit:")[1].split()[0].rstrip("]).,"))
    await chat.click(COMMS.email, f"submit:{ann}")
    await chat.tick()  # the approver has the request
    engine = chat.runtime.engine
    original = engine.renderers[Purpose.ANNOUNCEMENT.value]
    broken = True

    def render(s, rows, now):  # type: ignore[no-untyped-def]
        if broken:
            raise RuntimeError("renderer bug")
        return original(s, rows, now)

    engine.renderers[Purpose.ANNOUNCEMENT.value] = render
    assert f"Approved #{ann}" in await chat.click(APPROVER.email, f"approve:{ann}")
    supervisor = Supervisor(backoff_base=0.1, backoff_cap=0.4)
    with TestClient(create_app(chat.runtime, supervisor=supervisor)) as client:
        deadline = time.monotonic() + 10
        while (health := client.get("/healthz")).status_code == 200:
            assert time.monotonic() < deadline, "the crash never showed in /healthz"
            time.sleep(0.02)
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "degraded"
        assert "delivery is down (crashed: RuntimeError: renderer bug)" in body["reason"]
        assert body["tasks"]["scheduler"] == "up"
        while supervisor.tasks["delivery"].restarts < 2:
            assert time.monotonic() < deadline, "the engine was not restarted"
            time.sleep(0.02)
        metrics = client.get("/metrics").text
        assert _metric(metrics, 'crier_task_restarts_total{task="delivery"}') >= 2
        assert _metric(metrics, 'crier_task_up{task="scheduler"}') == 1

        broken = False  # the bug is gone: the next restart runs for good
        while (health := client.get("/healthz")).status_code != 200:
            assert time.monotonic() < deadline + 5, health.text
            time.sleep(0.05)
        assert health.json()["status"] == "ok"
        while not chat.messages("sales1@example.com", ann):
            assert time.monotonic() < deadline + 10, "nothing was delivered after the restart"
            time.sleep(0.05)
        assert _metric(client.get("/metrics").text, 'crier_task_up{task="delivery"}') == 1
