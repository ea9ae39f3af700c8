"""The one executor that runs database work off the event loop.

Rules:
- Every call runs ``fn(*args)`` in a worker thread inside a copy of the caller's
  ``contextvars`` context, so state kept in context variables travels with it.
- Work waits in one priority queue: an ``INTERACTIVE`` call (a person's click or
  command) is started before any ``BACKGROUND`` call (the delivery engine's batch
  writes, the scheduler) that was queued earlier.
- On SQLite the database has one writer at a time (``storage.db.serialize_writers``);
  a call carries its priority to that turn-taking, so a waiting interactive write
  takes the next turn ahead of background writes.
- Background work gives way to people: a background call does not start while an
  interactive one is queued or running (for at most ``GIVE_WAY`` seconds, so it is
  never starved), and ``give_way()`` lets the delivery engine hold its next send
  the same way. A click's statements then do not queue for the GIL behind the
  engine's sending and rendering. The holds of one event loop add up to at most
  ``HOLD_SHARE`` of each second, so a steady stream of clicks slows a send by at
  most that share instead of stopping it.
- A call whose caller was cancelled before it started is never run.
- ``shutdown()`` finishes the calls already queued and stops the threads; a later
  call starts them again (a ``Database`` may be disposed and used again).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

T = TypeVar("T")

_LOCAL = threading.local()
#: The longest background work waits for interactive work to finish.
GIVE_WAY = 0.05
#: The most of each second ``give_way`` holds an event loop's background work.
HOLD_SHARE = 0.25


class Priority(IntEnum):
    INTERACTIVE = 0
    BACKGROUND = 1


def current_priority() -> Priority:
    """The priority of the call this thread is running (INTERACTIVE outside the executor)."""
    return getattr(_LOCAL, "priority", Priority.INTERACTIVE)


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    run: Callable[[], None] | None = field(compare=False, default=None)  # None: stop


class DbExecutor:
    """A bounded set of threads fed by one priority queue."""

    def __init__(self, workers: int, name: str = "crier-db") -> None:
        if workers < 1:
            raise ValueError("a database executor needs at least one thread")
        self.workers = workers
        self.name = name
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._calm = threading.Condition(self._lock)
        #: Interactive calls queued or running now.
        self.interactive = 0
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pending] = (
            weakref.WeakKeyDictionary())

    async def run(self, fn: Callable[..., T], *args: Any,
                  priority: Priority = Priority.INTERACTIVE) -> T:
        """Run ``fn(*args)`` in a worker thread at ``priority``; return its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        context = contextvars.copy_context()
        interactive = priority == Priority.INTERACTIVE

        def settle(outcome: Callable[[], None]) -> None:
            if not future.done():
                outcome()

        def work() -> None:
            try:
                if future.cancelled():
                    return
                if not interactive:
                    with self._calm:
                        self._calm.wait_for(lambda: self.interactive == 0, GIVE_WAY)
                _LOCAL.priority = priority
                try:
                    result = context.run(fn, *args)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    error = exc
                    _deliver(loop, lambda: settle(lambda: future.set_exception(error)))
                else:
                    _deliver(loop, lambda: settle(lambda: future.set_result(result)))
                finally:
                    _LOCAL.priority = Priority.INTERACTIVE
            finally:
                if interactive:
                    with self._calm:
                        self.interactive -= 1
                        self._calm.notify_all()

        self._start()
        pending = self._loops.setdefault(loop, _Pending()) if interactive else None
        if pending is not None:
            pending.add()
            with self._lock:
                self.interactive += 1
        self._queue.put(_Job(int(priority), next(self._seq), work))
        try:
            return await future
        finally:
            if pending is not None:
                pending.done()

    async def give_way(self, limit: float = GIVE_WAY) -> None:
        """Wait (at most ``limit`` seconds) while interactive calls made from this
        event loop are pending; return at once when there are none, or when this
        second's share of holding (``HOLD_SHARE``) is used up."""
        pending = self._loops.get(asyncio.get_running_loop())
        if pending is None or not pending.count:
            return
        allowed = min(limit, pending.hold_left())
        if allowed <= 0:
            return
        pending.hold()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pending.idle.wait(), allowed)
        finally:
            pending.release()

    @property
    def threads(self) -> int:
        """Worker threads alive now."""
        with self._lock:
            return sum(t.is_alive() for t in self._threads)

    def _start(self) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < self.workers:
                thread = threading.Thread(target=self._serve, daemon=True,
                                          name=f"{self.name}-{len(self._threads)}")
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            if job.run is None:
                return
            job.run()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then stop every thread (waits at most ``timeout``)."""
        with self._lock:
            threads = list(self._threads)
            for _ in threads:  # after every queued call: stops sort last
                self._queue.put(_Job(len(Priority), next(self._seq), None))
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]


class _Pending:
    """Interactive calls awaited in one event loop, and how long background work
    held back for them this second (used only from that loop)."""

    def __init__(self) -> None:
        self.count = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self._holders = 0
        self._since = 0.0  # when the current hold began
        self._window = 0.0  # when this second began
        self._held = 0.0  # seconds held this second, before the current hold

    def add(self) -> None:
        self.count += 1
        self.idle.clear()

    def done(self) -> None:
        self.count -= 1
        if not self.count:
            self.idle.set()

    def hold_left(self) -> float:
        now = time.monotonic()
        if now - self._window >= 1.0:
            self._window, self._held = now, 0.0
            if self._holders:
                self._since = now
        running = now - self._since if self._holders else 0.0
        return HOLD_SHARE - self._held - running

    def hold(self) -> None:
        if not self._holders:
            self._since = time.monotonic()
        self._holders += 1

    def release(self) -> None:
        self._holders -= 1
        if not self._holders:
            self._held += time.monotonic() - self._since


def _deliver(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    # A closed loop raises RuntimeError: nobody waits for the answer any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)


__all__ = ["DbExecutor", "Priority", "current_priority"]
