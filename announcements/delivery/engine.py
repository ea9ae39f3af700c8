"""The delivery engine: drains the outbox through each platform until stopped.

Modules: ``config`` (``EngineConfig``, ``CRIER_*`` variables), ``lanes`` (one
platform's lane), ``sending`` (one row: throttle, platform call, retries),
``batches`` (claims, rendering, result writes, leases), this module (the
long-running loop).

Rules:
- Each platform has its own lane: a throttle, a queue of leased rows and
  ``concurrency`` senders. One platform's throttling never slows another's.
- Results are written within ``flush_interval`` of each send, and no lane sends
  while ``max_unrecorded`` results wait to be written (a slow or unreachable
  database). So a killed worker re-sends at most the messages it had sent but
  not recorded, plus those in flight (at-least-once; docs/delivery.md).
- Leases of queued rows are renewed while the worker lives; on shutdown rows not
  yet started are given back at once and requests in flight may finish.
- In a lane without a rate limit each send waits while a person's click is being
  handled (at most 50 ms, and at most a quarter of the time): the click goes first
  (``storage.executor``). A paced lane leaves the CPU free between its slots, and
  a slot it waited out would be lost, so it does not wait.
"""

from __future__ import annotations

import asyncio
import contextlib

from announcements.delivery import heartbeat
from announcements.delivery.batches import DB_ERRORS, Batches, Renderer, log
from announcements.delivery.config import (
    ENV,
    RATE_PREFIX,
    EngineConfig,
    config_from_env,
    parse_limits,
)
from announcements.delivery.lanes import PlatformLane, line, wait, wait_any, worker_id
from announcements.delivery.outbox import Claimed, Outbox, Result, Version
from announcements.types import OutboundMessage

__all__ = ["ENV", "RATE_PREFIX", "Claimed", "DeliveryEngine", "EngineConfig", "Outbox",
           "PlatformLane", "Renderer", "Result", "Version", "config_from_env", "parse_limits",
           "worker_id"]


class DeliveryEngine(Batches):
    """Sends what the outbox holds, one lane per platform, until stopped."""

    # -- the long-running loop ---------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve every lane until ``stop`` is set (``crier serve``)."""
        self._stopping = False
        self._stop = stop
        self._flush_now = asyncio.Event()
        lanes_done = asyncio.Event()
        if self.db.is_sqlite:  # one process by design: a predecessor's leases are ours now
            with contextlib.suppress(*DB_ERRORS):
                await self._db(heartbeat.take_over, self.db, self.owner)
        helpers = [asyncio.create_task(self._flush_loop(lanes_done)),
                   asyncio.create_task(self._heartbeat_loop(lanes_done)),
                   asyncio.create_task(self._housekeeping_loop(lanes_done))]
        try:
            # Serves until stopped, with no platform too (an engine that ends is restarted).
            await asyncio.gather(stop.wait(),
                                 *(self._lane_loop(name, stop) for name in self.lanes))
        finally:
            lanes_done.set()
            self._flush_now.set()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self.flush()
            await self._give_back()
            with contextlib.suppress(*DB_ERRORS):
                await self._db(heartbeat.forget, self.db, self.owner)
            self._beat_at = None
            self._flush_now = None

    async def _housekeeping_loop(self, done: asyncio.Event) -> None:
        every = max(0.05, min(self.config.progress_interval,
                              self.config.lease.total_seconds() / 6))
        while not done.is_set():
            await wait(done, every)
            if done.is_set():
                return
            try:
                await self._renew()
            except DB_ERRORS as exc:
                log.warning("cannot renew leases (%s)", line(exc))
            await self.housekeep()

    async def _lane_loop(self, name: str, stop: asyncio.Event) -> None:
        lane = self.lanes[name]
        queue: asyncio.Queue[tuple[Claimed, OutboundMessage | None]] = asyncio.Queue()
        workers = [asyncio.create_task(self._worker(lane, queue))
                   for _ in range(self.config.concurrency)]
        backoff = self.config.db_retry_base
        try:
            while not stop.is_set():
                if queue.qsize() >= max(1, self._claim_size(lane) // 2):
                    lane.room.clear()
                    await wait(lane.room, self.config.idle_poll)
                    continue
                try:
                    rows = await self._claim(name, lane)
                    messages = await self._prepare(rows) if rows else {}
                except DB_ERRORS as exc:
                    self.db_errors += 1
                    log.warning("delivery lane %s: database unavailable (%s); retrying in %.1fs",
                                name, line(exc), backoff)
                    await wait(stop, backoff)
                    backoff = min(backoff * 2, self.config.db_retry_cap)
                    continue
                backoff = self.config.db_retry_base
                for row in rows:
                    queue.put_nowait((row, messages.get(row.id)))
                if not rows:
                    lane.wake.clear()
                    await wait_any((lane.wake, stop), self.config.idle_poll)
        finally:
            await self._stop_lane(lane, queue, workers)

    async def _worker(self, lane: PlatformLane,
                      queue: asyncio.Queue[tuple[Claimed, OutboundMessage | None]]) -> None:
        low = max(1, self._claim_size(lane) // 2)
        while True:
            row, msg = await queue.get()
            if not lane.throttle.interval:  # flat out: a person's click goes first
                await self.db.executor.give_way()
            await self._deliver(lane, row, msg)
            if queue.qsize() < low:
                lane.room.set()

    async def _stop_lane(self, lane: PlatformLane,
                         queue: asyncio.Queue[tuple[Claimed, OutboundMessage | None]],
                         workers: list[asyncio.Task[None]]) -> None:
        """Give back what was not started; let requests in flight finish."""
        self._stopping = True
        while not queue.empty():
            row, _ = queue.get_nowait()
            self._release.add(row.id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.send_timeout
        while lane.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    async def _give_back(self) -> None:
        ids, self._release = self._release, set()
        for i in ids:
            self._held.pop(i, None)
        if ids:
            with contextlib.suppress(*DB_ERRORS):
                await self._db(self.outbox.release, ids, self.clock.now())

