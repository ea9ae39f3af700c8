"""The delivery engine: drains the outbox through each platform.

Rules:
- Each platform has its own lane: a throttle, a queue of leased rows and
  ``concurrency`` senders. One platform's throttling never slows another's.
- Results are written within ``flush_interval`` of each send, and no lane sends
  while ``max_unrecorded`` results wait to be written (a slow or unreachable
  database). So a killed worker re-sends at most the messages it had sent but
  not recorded, plus those in flight (at-least-once; docs/delivery.md).
- A row is never sent once its lease may have run out: another worker may hold
  it by then. Leases of queued rows are renewed while the worker lives.
- 429: no request to that platform is started until ``Retry-After`` has passed
  (counted from the moment the 429 reached Crier); the row is due again then,
  with its attempt given back. 5xx/timeouts: exponential backoff with jitter, at
  most ``max_attempts``, then ``failed`` with the reason. Unreachable (blocked,
  deactivated, not found): never retried.
- A database outage is waited out with backoff: claims pause, results are kept
  and written once it answers again. Nothing is dropped.
- The engine's database work runs on the database's executor at BACKGROUND
  priority, and each send waits while a person's click is being handled (at
  most 50 ms): the click goes first (``storage.executor``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from announcements.clock import Clock
from announcements.delivery import progress
from announcements.delivery.outbox import Channels, Claimed, Outbox, Result, Version
from announcements.delivery.throttle import Throttle
from announcements.ports import (
    ChatPlatform,
    PermanentError,
    RateLimited,
    RateLimits,
    TransientError,
    Unreachable,
)
from announcements.types import (
    BULK_PURPOSES,
    DeliveryAction,
    DeliveryStatus,
    OutboundMessage,
    Purpose,
)
from storage.db import Database, Priority

__all__ = ["Claimed", "DeliveryEngine", "EngineConfig", "Outbox", "PlatformLane", "Renderer",
           "Result", "Version"]

log = logging.getLogger("crier.delivery")
DB_ERRORS = (OperationalError, DBAPIError)
T = TypeVar("T")
#: What the rows of one purpose say, read in the engine's session at ``now``;
#: a row left out is not sent (its announcement was cancelled, its request decided).
Renderer = Callable[[Session, list[Claimed], datetime], dict[int, OutboundMessage]]


@dataclass
class EngineConfig:
    batch_size: int = 200
    lease: timedelta = timedelta(seconds=120)
    max_attempts: int = 6
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    send_timeout: float = 30.0
    concurrency: int = 8
    flush_interval: float = 0.05
    flush_size: int = 100
    #: Senders wait while this many results are not yet written (bounds duplicates).
    max_unrecorded: int = 500
    idle_poll: float = 0.5
    #: First wait after a database error; doubles up to ``db_retry_cap``.
    db_retry_base: float = 0.2
    db_retry_cap: float = 10.0
    #: Seconds between updates of the author's live status message.
    progress_interval: float = 5.0
    #: Sends to fewer people finish in seconds and get no live status message.
    progress_min_recipients: int = 100
    #: Rows rendered per database call (a click waits for at most one such call).
    render_chunk: int = 25
    #: Overrides of the platforms' own ``limits``, by platform name.
    limits: dict[str, RateLimits] = field(default_factory=dict)


#: ``CRIER_*`` settings of the engine (seconds unless named otherwise).
ENV = {
    "CRIER_DELIVERY_CONCURRENCY": "concurrency",
    "CRIER_DELIVERY_BATCH": "batch_size",
    "CRIER_DELIVERY_MAX_ATTEMPTS": "max_attempts",
    "CRIER_DELIVERY_LEASE": "lease",
    "CRIER_PROGRESS_INTERVAL": "progress_interval",
    "CRIER_PROGRESS_MIN_RECIPIENTS": "progress_min_recipients",
}
RATE_PREFIX = "CRIER_RATE_LIMIT_"


def config_from_env(env: Mapping[str, str]) -> EngineConfig:
    """``EngineConfig`` from ``CRIER_*`` variables; ``CRIER_RATE_LIMIT_SLACK=8,1,10``
    sets a platform's messages per second, per conversation and burst."""
    config = EngineConfig()
    for var, name in ENV.items():
        raw = env.get(var, "").strip()
        if not raw:
            continue
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"{var}={raw!r} is not a number; e.g. {var}=5") from None
        if name == "lease":
            config.lease = timedelta(seconds=number)
        else:
            setattr(config, name, type(getattr(config, name))(number))
    for var, raw in env.items():
        if var.startswith(RATE_PREFIX) and raw.strip():
            config.limits[var.removeprefix(RATE_PREFIX).lower()] = parse_limits(var, raw)
    return config


def parse_limits(var: str, raw: str) -> RateLimits:
    try:
        parts = [float(p) for p in raw.split(",")]
        if not 1 <= len(parts) <= 3 or min(parts) < 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"{var}={raw!r} should be PER_SECOND[,PER_CONVERSATION[,BURST]], "
                         f"e.g. {var}=30,1") from None
    return RateLimits(parts[0], parts[1] if len(parts) > 1 else 0,
                      int(parts[2]) if len(parts) > 2 else 1)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random.randrange(16**6):06x}"


def _result(row: Claimed, status: DeliveryStatus, **kw: Any) -> Result:
    """A result that keeps what the row already knew.

    A retry keeps the row's pending action; a failed update or delete leaves
    the message as it was delivered, with the error noted.
    """
    action = row.action if status == DeliveryStatus.PENDING else DeliveryAction.SEND.value
    if row.action != DeliveryAction.SEND and status in (
        DeliveryStatus.FAILED, DeliveryStatus.UNREACHABLE, DeliveryStatus.CANCELLED
    ):
        status = DeliveryStatus.DELIVERED
    fields: dict[str, Any] = {"attempts": row.attempts, "message_ref": row.message_ref}
    fields.update(kw)
    return Result(row, status, action=action, **fields)


class _NotOurs(Exception):
    """The row's lease may have run out, or the engine is stopping: do not send it."""


@dataclass
class PlatformLane:
    """One platform's worker state: its throttle, queue and counters."""

    platform: ChatPlatform
    throttle: Throttle
    sent: int = 0
    failed: int = 0
    rate_limited: int = 0
    in_flight: int = 0
    requests: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    room: asyncio.Event = field(default_factory=asyncio.Event)


class DeliveryEngine:
    """Sends what the outbox holds, one lane per platform."""

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
        self.lanes = {
            name: PlatformLane(p, Throttle(self.config.limits.get(name, p.limits)))
            for name, p in platforms.items()
        }
        self.db_errors = 0
        self._results: list[Result] = []
        self._flush_lock: asyncio.Lock | None = None
        self._flush_now: asyncio.Event | None = None
        self._held: dict[int, datetime] = {}  # row id -> lease deadline
        self._touched: set[int] = set()
        self._announced: set[int] = set()
        self._release: set[int] = set()
        self._started: set[int] = set()  # rows whose platform call has begun
        self._stopping = False
        self._stop: asyncio.Event | None = None

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

    def _margin(self) -> timedelta:
        return min(timedelta(seconds=self.config.send_timeout), self.config.lease / 4)

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
        try:
            await asyncio.gather(*(one(r) for r in rows))
        finally:
            done.set()  # never cancel a flush: a cancelled write would lose its batch
            await flusher
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
        rows = await self._db(self.outbox.claim, platform, self._claim_size(lane),
                              self.clock.now(), self.config.lease)
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
                log.warning("cannot open progress messages (%s); next batch", _line(exc))
        need = [r for r in rows if r.action != DeliveryAction.DELETE]
        give_up = min((r.leased_until for r in rows if r.leased_until), default=None)
        delay = self.config.db_retry_base
        while True:
            try:
                return await self._render_in_chunks(need)
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
                            _line(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.db_retry_cap)

    async def _render_in_chunks(self, rows: list[Claimed]) -> dict[int, OutboundMessage]:
        """Render a batch a few rows per database call, so a click waits for one
        short call at most, never for a whole batch being rendered."""
        out: dict[int, OutboundMessage] = {}
        step = self.config.render_chunk
        for i in range(0, len(rows), step):
            out.update(await self._db(self._render_rows, rows[i:i + step]))
        return out

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

    # -- sending one row -----------------------------------------------------------

    async def _deliver(self, lane: PlatformLane, row: Claimed, msg: OutboundMessage | None
                       ) -> None:
        try:
            result = await self._attempt(lane, row, msg)
        except _NotOurs:
            self._held.pop(row.id, None)
            return
        except asyncio.CancelledError:
            if row.id not in self._started:
                self._release.add(row.id)  # never sent: give it back
            raise
        finally:
            self._started.discard(row.id)
        self._held.pop(row.id, None)
        self._results.append(result)
        if len(self._results) >= self.config.flush_size and self._flush_now is not None:
            self._flush_now.set()

    async def _attempt(self, lane: PlatformLane, row: Claimed, msg: OutboundMessage | None
                       ) -> Result:
        version = row.version or Version()
        if row.action == DeliveryAction.DELETE and not row.message_ref:
            return _result(row, DeliveryStatus.RECALLED, error="nothing to delete")
        if row.action != DeliveryAction.DELETE and version.recalled:
            return _result(row, DeliveryStatus.CANCELLED, error="recalled before it was sent")
        if row.action != DeliveryAction.DELETE and msg is None:
            return _result(row, DeliveryStatus.CANCELLED, error="nothing to send any more")
        while len(self._results) >= self.config.max_unrecorded:
            if self._flush_now is not None:
                self._flush_now.set()
            await asyncio.sleep(self.config.flush_interval)
        try:
            return await self._perform(lane, row, msg)
        except RateLimited as exc:
            return _result(row, DeliveryStatus.PENDING, attempts=row.attempts - 1,
                           error=str(exc), next_attempt_at=self.clock.now()
                           + timedelta(seconds=exc.retry_after))
        except Unreachable as exc:
            return _result(row, DeliveryStatus.UNREACHABLE, error=str(exc) or "unreachable")
        except PermanentError as exc:
            lane.failed += 1
            return _result(row, DeliveryStatus.FAILED, error=str(exc))
        except _NotOurs:
            raise
        except Exception as exc:  # noqa: BLE001 - transient, timeouts, and our own bugs
            return self._retry_or_fail(lane, row, exc)

    async def _perform(self, lane: PlatformLane, row: Claimed, msg: OutboundMessage | None
                       ) -> Result:
        """Send, update or delete, as the row asks.

        Nothing may run between the throttle's yes and the platform call, nor
        between a 429 and the pause it causes: both happen without yielding.
        """
        await lane.throttle.acquire(row.address)
        deadline = self._held.get(row.id)
        if self._stopping or (deadline and self.clock.now() + self._margin() >= deadline):
            raise _NotOurs()
        address = row.address or ""
        self._started.add(row.id)
        lane.in_flight += 1
        lane.requests += 1
        try:
            async with asyncio.timeout(self.config.send_timeout):
                if row.action == DeliveryAction.DELETE and row.message_ref:
                    await lane.platform.delete(address, row.message_ref)
                    ref, status = row.message_ref, DeliveryStatus.RECALLED
                elif row.action == DeliveryAction.UPDATE and row.message_ref:
                    assert msg is not None
                    await lane.platform.update(address, row.message_ref, msg)
                    ref, status = row.message_ref, DeliveryStatus.DELIVERED
                else:
                    assert msg is not None
                    ref, status = await lane.platform.send(address, msg), DeliveryStatus.DELIVERED
        except RateLimited as exc:
            lane.throttle.pause(exc.retry_after)
            lane.rate_limited += 1
            raise
        finally:
            lane.in_flight -= 1
        lane.sent += 1
        return _result(row, status, message_ref=ref, delivered_at=self.clock.now())

    def _retry_or_fail(self, lane: PlatformLane, row: Claimed, exc: BaseException) -> Result:
        reason = str(exc) or type(exc).__name__
        if not isinstance(exc, TransientError | TimeoutError | OSError):
            log.warning("unexpected error sending delivery %s on %s: %r", row.id,
                        lane.platform.name, exc)
        if row.attempts >= self.config.max_attempts:
            lane.failed += 1
            return _result(row, DeliveryStatus.FAILED,
                           error=f"gave up after {row.attempts} attempts: {reason}")
        wait = min(self.config.backoff_cap, self.config.backoff_base * 2 ** (row.attempts - 1))
        wait = random.uniform(wait / 2, wait)  # jitter spreads retries of a broad outage
        return _result(row, DeliveryStatus.PENDING, error=reason,
                       next_attempt_at=self.clock.now() + timedelta(seconds=wait))

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
                                len(batch), _line(exc), delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.config.db_retry_cap)
                    continue
                self._touched |= touched
                if not everything:
                    return

    async def housekeep(self) -> int:
        """Queue progress updates and finish what is done; return rows now due."""
        touched, self._touched = self._touched, set()
        now = self.clock.now()
        try:
            due, later = await self._db(progress.requeue, self.db, touched, now,
                                        self.config.progress_interval)
            await self._db(self.outbox.sweep, now)
        except DB_ERRORS as exc:
            self.db_errors += 1
            self._touched |= touched
            log.warning("housekeeping skipped (%s)", _line(exc))
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

    # -- the long-running loop ---------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve every lane until ``stop`` is set (``crier serve``)."""
        self._stopping = False
        self._stop = stop
        self._flush_now = asyncio.Event()
        lanes_done = asyncio.Event()
        helpers = [asyncio.create_task(self._flush_loop(lanes_done)),
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
            self._flush_now = None

    def poke(self, platforms: Iterable[str] | None = None) -> None:
        """New rows were written: wake the lanes instead of waiting for the next poll."""
        for name in platforms or self.lanes:
            if name in self.lanes:
                self.lanes[name].wake.set()

    async def _flush_loop(self, done: asyncio.Event) -> None:
        """Write results every ``flush_interval`` (sooner when many wait) until ``done``."""
        while not done.is_set():
            if self._flush_now is None:
                await _wait(done, self.config.flush_interval)
            else:
                await _wait_any((self._flush_now, done), self.config.flush_interval)
                self._flush_now.clear()
            await self.flush(everything=False)

    async def _housekeeping_loop(self, done: asyncio.Event) -> None:
        every = max(0.05, min(self.config.progress_interval,
                              self.config.lease.total_seconds() / 6))
        while not done.is_set():
            await _wait(done, every)
            if done.is_set():
                return
            try:
                await self._renew()
            except DB_ERRORS as exc:
                log.warning("cannot renew leases (%s)", _line(exc))
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
                    await _wait(lane.room, self.config.idle_poll)
                    continue
                try:
                    rows = await self._claim(name, lane)
                    messages = await self._prepare(rows) if rows else {}
                except DB_ERRORS as exc:
                    self.db_errors += 1
                    log.warning("delivery lane %s: database unavailable (%s); retrying in %.1fs",
                                name, _line(exc), backoff)
                    await _wait(stop, backoff)
                    backoff = min(backoff * 2, self.config.db_retry_cap)
                    continue
                backoff = self.config.db_retry_base
                for row in rows:
                    queue.put_nowait((row, messages.get(row.id)))
                if not rows:
                    lane.wake.clear()
                    await _wait_any((lane.wake, stop), self.config.idle_poll)
        finally:
            await self._stop_lane(lane, queue, workers)

    async def _worker(self, lane: PlatformLane,
                      queue: asyncio.Queue[tuple[Claimed, OutboundMessage | None]]) -> None:
        low = max(1, self._claim_size(lane) // 2)
        while True:
            row, msg = await queue.get()
            await self.db.executor.give_way()  # a person's click goes first
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


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


async def _wait_any(events: Iterable[asyncio.Event], timeout: float) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def _line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
