"""The database executor (storage.executor): context travels, a person's work goes
before queued background work, a cancelled call is never run, shutdown is clean."""

from __future__ import annotations

import asyncio
import contextvars
import threading

from storage.db import Database, Priority
from storage.executor import GIVE_WAY, HOLD_SHARE, DbExecutor, current_priority

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


async def test_the_callers_context_and_priority_travel_with_the_call(db: Database) -> None:
    WHO.set("ana@example.com")
    seen = await db.executor.run(lambda: (WHO.get(), current_priority(),
                                          threading.current_thread().name))
    assert seen[0] == "ana@example.com" and seen[1] == Priority.INTERACTIVE
    assert seen[2] != threading.main_thread().name
    assert await db.executor.run(current_priority, priority=Priority.BACKGROUND) \
        == Priority.BACKGROUND
    assert await db.executor.run(divmod, 7, 2) == (3, 1)


async def test_an_error_reaches_the_caller() -> None:
    executor = DbExecutor(1)
    try:
        raised = False
        try:
            await executor.run(int, "not a number")
        except ValueError:
            raised = True
        assert raised
    finally:
        executor.shutdown()


async def test_a_click_queued_after_background_batches_runs_before_them() -> None:
    executor = DbExecutor(1)
    gate = threading.Event()
    order: list[str] = []
    try:
        blocker = asyncio.ensure_future(executor.run(gate.wait, 5, priority=Priority.BACKGROUND))
        await asyncio.sleep(0.05)  # the only thread is busy with the first batch
        batches = [asyncio.ensure_future(executor.run(order.append, f"batch {i}",
                                                      priority=Priority.BACKGROUND))
                   for i in range(3)]
        await asyncio.sleep(0.01)
        click = asyncio.ensure_future(executor.run(order.append, "click"))
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(blocker, click, *batches)
        assert order == ["click", "batch 0", "batch 1", "batch 2"]
    finally:
        executor.shutdown()


async def test_a_call_cancelled_before_it_started_never_runs() -> None:
    executor = DbExecutor(1)
    gate = threading.Event()
    ran: list[str] = []
    try:
        blocker = asyncio.ensure_future(executor.run(gate.wait, 5))
        await asyncio.sleep(0.05)
        doomed = asyncio.ensure_future(executor.run(ran.append, "doomed"))
        await asyncio.sleep(0.01)
        doomed.cancel()
        gate.set()
        await blocker
        await executor.run(ran.append, "later")
        assert ran == ["later"]
    finally:
        executor.shutdown()


async def test_dispose_stops_the_threads_and_a_later_call_starts_them_again(
        db_url: str) -> None:
    db = Database(db_url)
    await db.executor.run(db.check)
    assert db.executor.threads == db.executor.workers
    await asyncio.to_thread(db.dispose)
    assert db.executor.threads == 0
    await db.executor.run(db.check)  # a disposed database can still be used
    db.dispose()


async def test_the_engine_holds_for_clicks_at_most_its_share_of_each_second() -> None:
    """A steady stream of clicks slows a send; it never stops it: ``give_way`` holds
    for a pending click, but for at most ``HOLD_SHARE`` of a second in all."""
    executor = DbExecutor(1)
    gate = threading.Event()
    try:
        await executor.give_way()  # nothing pending: returns at once
        click = asyncio.ensure_future(executor.run(gate.wait, 5))  # a click that lasts
        await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        started = loop.time()
        held = 0
        while loop.time() - started < 0.6:
            before = loop.time()
            await executor.give_way()
            if loop.time() - before >= 0.02:
                held += 1
        spent = loop.time() - started
        # Held while its share lasted (one GIVE_WAY at a time), then never again.
        assert held == round(HOLD_SHARE / GIVE_WAY)
        assert spent < 0.6 + GIVE_WAY
        gate.set()
        await click
    finally:
        gate.set()
        executor.shutdown()
