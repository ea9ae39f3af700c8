"""Supervised background tasks: the delivery engine and the scheduler of a process.

Rules:
- A supervised task that raises is logged with its traceback and started again
  after a backoff that doubles from ``backoff_base`` up to ``backoff_cap``; a run
  that lasted ``healthy_after`` seconds starts the backoff over.
- While a task is not running (crashed, waiting to restart), it is ``down`` with
  the reason; ``/healthz`` reports that as ``degraded`` and ``/metrics`` shows
  ``crier_task_up`` 0. Every restart counts in ``crier_task_restarts_total``.
- A task that returns while the process is not stopping is restarted the same way
  (a worker loop has no business ending by itself).
- Stopping sets the shared ``stop`` event and waits for each task to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("crier.supervision")

Work = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class TaskState:
    """What ``/healthz`` and ``/metrics`` show of one supervised task."""

    name: str
    up: bool = False
    restarts: int = 0
    reason: str = "not started yet"
    since: float = field(default_factory=time.monotonic)


class Supervisor:
    """Runs named long-lived coroutines and restarts them when they fail."""

    def __init__(self, *, backoff_base: float = 0.5, backoff_cap: float = 30.0,
                 healthy_after: float = 60.0) -> None:
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.healthy_after = healthy_after
        self.tasks: dict[str, TaskState] = {}
        self._running: list[asyncio.Task[None]] = []
        self._pending: list[tuple[TaskState, Work]] = []
        self._stop = asyncio.Event()

    def add(self, name: str, work: Work) -> TaskState:
        """Declare ``work`` under ``name``; it starts with ``start``."""
        state = self.tasks[name] = TaskState(name)
        self._pending.append((state, work))
        return state

    def start(self, stop: asyncio.Event | None = None) -> None:
        """Start every declared task; ``stop`` (if given) ends them all when set."""
        if stop is not None:
            self._stop = stop
        for state, work in self._pending:
            self._running.append(asyncio.create_task(self._keep(state, work),
                                                     name=f"supervised:{state.name}"))
        self._pending.clear()

    def down(self) -> dict[str, str]:
        """Tasks not running now, with the reason."""
        return {s.name: s.reason for s in self.tasks.values() if not s.up}

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask every task to stop and wait for it (cancelled after ``timeout``)."""
        self._stop.set()
        if not self._running:
            return
        done, pending = await asyncio.wait(self._running, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._running.clear()

    async def _keep(self, state: TaskState, work: Work) -> None:
        delay = self.backoff_base
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            state.up, state.reason, state.since = True, "", time.monotonic()
            started = loop.time()
            error: Exception | None = None
            try:
                await work(self._stop)
            except asyncio.CancelledError:
                state.up, state.reason = False, "cancelled"
                raise
            except Exception as exc:  # noqa: BLE001 - the point: log it and restart
                error = exc
            if error is None and self._stop.is_set():
                break
            if loop.time() - started >= self.healthy_after:
                delay = self.backoff_base
            state.reason = (f"crashed: {type(error).__name__}: {error}" if error
                            else "ended by itself")
            log.error("background task %s %s; restarting in %.1fs", state.name,
                      state.reason, delay, exc_info=error)
            state.up, state.since = False, time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                break
            state.restarts += 1
            delay = min(delay * 2, self.backoff_cap)
        state.up, state.reason = False, "stopped"
