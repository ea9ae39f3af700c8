"""The engine's database side: claiming a batch, rendering it, writing results,
renewing leases and housekeeping; ``run_once``/``drain`` send one batch at a time
(console, tests).

Rules:
- A database outage is waited out with backoff: claims pause, results are kept
  and written once it answers again. Nothing is dropped.
- The engine's database work runs on the database's executor at BACKGROUND
  priority (``storage.executor``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from announcements.clock import Clock
from announcements.delivery import escalation, fallback, heartbeat, progress
from announcements.delivery.config import EngineConfig, merged_limits
from announcements.delivery.fanout import Channels
from announcements.delivery.lanes import PlatformLane, line, wait, wait_any, worker_id
from announcements.delivery.outbox import Claimed, Outbox, Result
from announcements.delivery.sending import Sender
from announcements.delivery.throttle import Throttle
from announcements.ports import ChatPlatform
from announcements.types import BULK_PURPOSES, DeliveryAction, OutboundMessage, Purpose
from storage.db import Database, Priority

log = logging.getLogger("crier.delivery")
DB_ERRORS = (OperationalError, DBAPIError)
#: How often a lane's claims also look for lost rows (expired leases, dead engines):
#: a dead engine's rows come back within its staleness (8 s) plus this.
LOST_EVERY = timedelta(seconds=1)
T = TypeVar("T")
#: What the rows of one purpose say, read in the engine's session at ``now``;
#: a row left out is not sent (its announcement was cancelled, its request decided).
Renderer = Callable[[Session, list[Claimed], datetime], dict[int, OutboundMessage]]


class Batches(Sender):
    """Claims, renders and records batches of rows, one lane per platform."""

    def __init__(
        self,
        db: Database,
        renderers: Mapping[str, Renderer],
        platforms: dict[str, ChatPlatform],
        clock: Clock,
        config: EngineConfig | None = None,
        owner: str | None = None,
        channels: Channels | None = None,
    ) -> None:
        missing = sorted(set(Purpose) - set(renderers))
        if missing:
            raise ValueError(f"no renderer for purposes {', '.join(missing)}")
        self.db = db
        self.renderers = dict(renderers)
        self.clock = clock
        self.config = config or EngineConfig()
        self.outbox = Outbox(db, owner or worker_id())
        self.channels: Channels = channels or Channels(
            enabled=tuple(platforms),
            by_email=frozenset(n for n, p in platforms.items() if p.identifies_by_email))
        self.outbox.after_record = self._after_record
        self.lanes = {
            name: PlatformLane(p, Throttle(merged_limits(self.config.limits.get(name), p.limits)))
            for name, p in platforms.items()
        }
        self.db_errors = 0
        self._results: list[Result] = []
        self._flush_lock: asyncio.Lock | None = None
        self._flush_now: asyncio.Event | None = None
        self._held: dict[int, datetime] = {}  # row id -> lease deadline
        self._lost_at: dict[str, datetime] = {}  # platform -> when claims last looked
        self._touched: set[int] = set()
        self._announced: set[int] = set()
        self._release: set[int] = set()
        self._started: set[int] = set()  # rows whose platform call has begun
        self._stopping = False
        self._stop: asyncio.Event | None = None
        self._beat_at: datetime | None = None  # our last heartbeat the database took

    @property
    def owner(self) -> str:
        return self.outbox.owner

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.db.executor.run(fn, *args, priority=Priority.BACKGROUND)

    def _claim_size(self, lane: PlatformLane) -> int:
        """No more than the lane can send well within a lease."""
        size = self.config.batch_size
        if lane.throttle.interval:
            budget = self.config.lease.total_seconds() / 2
            size = min(size, max(1, int(budget / lane.throttle.interval)))
        return size

    # -- one batch (console, tests) -------------------------------------------------

    async def run_once(self, platform: str) -> int:
        """Claim one batch for ``platform`` and send it; return how many were claimed."""
        lane = self.lanes[platform]
        rows = await self._claim(platform, lane)
        if not rows:
            return 0
        messages = await self._prepare(rows)
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(row: Claimed) -> None:
            async with gate:
                await self._deliver(lane, row, messages.get(row.id))

        done = asyncio.Event()
        flusher = asyncio.create_task(self._flush_loop(done))
        beating = asyncio.create_task(self._heartbeat_loop(done))
        try:
            await asyncio.gather(*(one(r) for r in rows))
        finally:
            done.set()  # never cancel a flush: a cancelled write would lose its batch
            await flusher
            await beating
            await self.flush()
        return len(rows)

    async def drain(self, max_rounds: int = 10_000) -> int:
        """Send everything due now on every platform (console and tests)."""
        total = 0
        for _ in range(max_rounds):
            claimed = 0
            for name in self.lanes:
                claimed += await self.run_once(name)
            total += claimed
            if not claimed and not await self.housekeep():
                break
        return total

    async def _claim(self, platform: str, lane: PlatformLane) -> list[Claimed]:
        """Lease a batch; nothing while our heartbeat cannot be written."""
        now = self.clock.now()
        every = timedelta(seconds=self.config.heartbeat_interval)
        if (self._beat_at is None or now - self._beat_at >= every) and not await self._beat():
            return []
        stale = now - heartbeat.stale_after(self.config.heartbeat_interval)
        looked = self._lost_at.get(platform)
        lost_too = looked is None or now - looked >= LOST_EVERY or now < looked
        rows = await self._db(self.outbox.claim, platform, self._claim_size(lane),
                              now, self.config.lease, stale, lost_too)
        if lost_too and any(r.lost for r in rows):
            self._lost_at.pop(platform, None)  # more may be waiting: look again next time
        elif lost_too:
            self._lost_at[platform] = now
        for r in rows:
            if r.leased_until is not None:
                self._held[r.id] = r.leased_until
        return rows

    async def _prepare(self, rows: list[Claimed]) -> dict[int, OutboundMessage]:
        """Open progress messages for sends that just started; render the rows.

        The database may be briefly away: retried while the rows' leases last.
        """
        fresh = {r.announcement_id for r in rows if r.purpose in BULK_PURPOSES} - self._announced
        if fresh:
            try:
                await self._db(progress.ensure, self.db, self.channels, fresh, self.clock.now(),
                               self.config.progress_min_recipients)
                self._announced |= fresh
            except DB_ERRORS as exc:
                log.warning("cannot open progress messages (%s); next batch", line(exc))
        need = [r for r in rows if r.action != DeliveryAction.DELETE]
        give_up = min((r.leased_until for r in rows if r.leased_until), default=None)
        delay = self.config.db_retry_base
        while True:
            try:
                return await self._db(self._render_rows, need) if need else {}
            except Exception as exc:
                if not isinstance(exc, DB_ERRORS):  # a bug, not an outage: the engine
                    self._release.update(r.id for r in rows)  # stops and gives them back
                    raise
                self.db_errors += 1
                late = give_up is not None and self.clock.now() + self._margin() >= give_up
                if late or (self._stop is not None and self._stop.is_set()):
                    for r in rows:  # not sent: due again once the leases run out
                        self._held.pop(r.id, None)
                    raise
                log.warning("cannot render %d rows (%s); retrying in %.1fs", len(need),
                            line(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.db_retry_cap)

    def _render_rows(self, rows: list[Claimed]) -> dict[int, OutboundMessage]:
        """What each row says, through the renderer of its purpose."""
        by_purpose: dict[str, list[Claimed]] = {}
        for r in rows:
            by_purpose.setdefault(r.purpose, []).append(r)
        out: dict[int, OutboundMessage] = {}
        now = self.clock.now()
        with self.db.session() as s:
            for purpose, mine in by_purpose.items():
                render = self.renderers.get(purpose)
                if render is not None:
                    out.update(render(s, mine, now))
        return out

    # -- writing results -----------------------------------------------------------

    async def flush(self, everything: bool = True) -> None:
        """Record finished sends. A database outage is waited out, never dropped.

        ``everything=False`` writes what is there now and returns, so the periodic
        writer takes the database's write lock once per ``flush_interval``.
        """
        if self._flush_lock is None:
            self._flush_lock = asyncio.Lock()
        async with self._flush_lock:
            delay = self.config.db_retry_base
            while self._results:
                batch, self._results = self._results, []
                try:
                    touched = await self._db(self.outbox.record, batch, self.clock.now())
                except DB_ERRORS as exc:
                    self.db_errors += 1
                    self._results = batch + self._results
                    log.warning("cannot record %d results (%s); retrying in %.1fs",
                                len(batch), line(exc), delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.config.db_retry_cap)
                    continue
                self._touched |= touched
                if not everything:
                    return

    async def housekeep(self) -> int:
        """Queue progress updates and due escalations, and finish what is done; return
        rows now due."""
        touched, self._touched = self._touched, set()
        now = self.clock.now()
        try:
            due, later = await self._db(progress.requeue, self.db, touched, now,
                                        self.config.progress_interval)
            await self._db(self.outbox.sweep, now)
            due += await self._db(escalation.escalate_due, self.db, self.channels, now)
        except DB_ERRORS as exc:
            self.db_errors += 1
            self._touched |= touched
            log.warning("housekeeping skipped (%s)", line(exc))
            return 0
        self._touched |= later
        if due:
            self.poke()
        return due

    async def _renew(self) -> None:
        """Keep the leases of rows this engine still holds (queued behind a pause)."""
        now = self.clock.now()
        soon = now + self.config.lease / 2
        ids = [i for i, until in self._held.items() if until <= soon]
        if not ids:
            return
        until = now + self.config.lease
        kept = await self._db(self.outbox.renew, ids, until)
        for i in ids:
            if i in kept and i in self._held:
                self._held[i] = until

    def poke(self, platforms: Iterable[str] | None = None) -> None:
        """New rows were written: wake the lanes instead of waiting for the next poll."""
        for name in platforms or self.lanes:
            if name in self.lanes:
                self.lanes[name].wake.set()

    async def _flush_loop(self, done: asyncio.Event) -> None:
        """Write results every ``flush_interval`` (sooner when many wait) until ``done``."""
        while not done.is_set():
            if self._flush_now is None:
                await wait(done, self.config.flush_interval)
            else:
                await wait_any((self._flush_now, done), self.config.flush_interval)
                self._flush_now.clear()
            await self.flush(everything=False)

    def _after_record(self, conn: Connection, results: list[Result], now: datetime) -> None:
        """In the results' transaction: fall back to the next platform, and update
        escalated copies their person acknowledged meanwhile."""
        fallback.fall_back(self.channels, conn, results, now)
        escalation.refresh_acknowledged(conn, results, now)

    async def _beat(self) -> bool:
        """Write our heartbeat; False (and a warning) if the database refuses it."""
        now = self.clock.now()
        try:
            await self._db(heartbeat.beat, self.db, self.owner, now)
        except DB_ERRORS as exc:
            self.db_errors += 1
            log.warning("cannot write the heartbeat of %s (%s); claiming nothing until it "
                        "is written", self.owner, line(exc))
            return False
        self._beat_at = now
        return True

    async def _heartbeat_loop(self, done: asyncio.Event) -> None:
        while not done.is_set():
            await wait(done, self.config.heartbeat_interval)
            if not done.is_set():
                await self._beat()
