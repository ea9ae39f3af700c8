"""The delivery engine: drains the outbox through each platform.

Rules:
- A worker claims a batch of due rows by leasing them (``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL, so several processes share the work; SQLite runs one
  worker). A row whose lease expired (its worker died) is due again.
- Each claim counts as an attempt, so a row that keeps crashing workers ends
  ``failed`` after ``max_attempts``.
- Results are written within ``flush_interval`` of each send, so a killed
  worker re-sends at most the messages sent but not yet recorded (at-least-once;
  see docs/delivery.md for the measured window).
- 429: the platform pauses for ``Retry-After`` and the row is due again then,
  with its attempt given back. 5xx/timeouts: exponential backoff with full
  jitter. Unreachable (blocked, deactivated, not found): never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, exists, func, or_, select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from announcements.ports import (
    ChatPlatform,
    PermanentError,
    RateLimited,
    TransientError,
    Unreachable,
)
from announcements.throttle import Throttle
from announcements.types import DeliveryAction, DeliveryStatus, OutboundMessage, Purpose, Status
from storage.db import Database
from storage.models import Announcement, Delivery

log = logging.getLogger("crier.delivery")
DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
ANNOUNCEMENT = Announcement.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Claimed:
    id: int
    announcement_id: int
    person_id: int
    platform: str
    purpose: str
    address: str | None
    attempts: int
    message_ref: str | None
    action: str = "send"


@dataclass
class Result:
    id: int
    announcement_id: int
    status: DeliveryStatus
    attempts: int
    message_ref: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    action: str = "send"


def _result(row: Claimed, status: DeliveryStatus, **kw: object) -> Result:
    """A result that keeps what the row already knew.

    A retry keeps the row's pending action; a failed update or delete leaves
    the message as it was delivered, with the error noted.
    """
    action = row.action if status == DeliveryStatus.PENDING else DeliveryAction.SEND.value
    if row.action != DeliveryAction.SEND and status in (
        DeliveryStatus.FAILED, DeliveryStatus.UNREACHABLE, DeliveryStatus.CANCELLED
    ):
        status = DeliveryStatus.DELIVERED
    fields: dict[str, object] = {"attempts": row.attempts, "message_ref": row.message_ref}
    fields.update(kw)
    return Result(row.id, row.announcement_id, status, action=action, **fields)  # type: ignore[arg-type]


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
    idle_poll: float = 0.5


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random.randrange(16**6):06x}"


class Outbox:
    """The database side of delivery: claim due rows, record results."""

    def __init__(self, db: Database, owner: str | None = None) -> None:
        self.db = db
        self.owner = owner or worker_id()

    def claim(self, platform: str, limit: int, now: datetime, lease: timedelta) -> list[Claimed]:
        due = or_(
            and_(DELIVERY.c.status == DeliveryStatus.PENDING.value,
                 DELIVERY.c.next_attempt_at <= now),
            and_(DELIVERY.c.status == DeliveryStatus.SENDING.value,
                 DELIVERY.c.leased_until < now),
        )
        pick = (
            select(DELIVERY.c.id)
            .where(DELIVERY.c.platform == platform, due)
            .order_by(DELIVERY.c.next_attempt_at, DELIVERY.c.id)
            .limit(limit)
        )
        if not self.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(DELIVERY)
            .where(DELIVERY.c.id.in_(pick.scalar_subquery()))
            .values(
                status=DeliveryStatus.SENDING.value,
                leased_until=now + lease,
                lease_owner=self.owner,
                attempts=DELIVERY.c.attempts + 1,
                updated_at=now,
            )
            .returning(
                DELIVERY.c.id, DELIVERY.c.announcement_id, DELIVERY.c.person_id,
                DELIVERY.c.platform, DELIVERY.c.purpose, DELIVERY.c.address,
                DELIVERY.c.attempts, DELIVERY.c.message_ref, DELIVERY.c.action,
            )
        )
        with self.db.engine.begin() as conn:
            rows = [Claimed(*r) for r in conn.execute(stmt)]
            ann_ids = {r.announcement_id for r in rows if r.purpose == Purpose.ANNOUNCEMENT}
            if ann_ids:
                conn.execute(
                    update(ANNOUNCEMENT)
                    .where(ANNOUNCEMENT.c.id.in_(ann_ids),
                           ANNOUNCEMENT.c.status == Status.SCHEDULED.value)
                    .values(status=Status.SENDING.value, sent_at=now, updated_at=now)
                )
        rows.sort(key=lambda r: r.id)
        return rows

    def record(self, results: list[Result], now: datetime) -> None:
        """Write results; announcements with nothing left to send become ``sent``."""
        if not results:
            return
        stmt = (
            update(DELIVERY)
            .where(DELIVERY.c.id == bindparam("b_id"), DELIVERY.c.lease_owner == self.owner)
            .values(
                status=bindparam("b_status"),
                attempts=bindparam("b_attempts"),
                message_ref=bindparam("b_ref"),
                error=bindparam("b_error"),
                next_attempt_at=bindparam("b_next"),
                delivered_at=func.coalesce(bindparam("b_delivered"), DELIVERY.c.delivered_at),
                action=bindparam("b_action"),
                leased_until=None,
                updated_at=now,
            )
        )
        params = [
            {
                "b_id": r.id,
                "b_status": r.status.value,
                "b_attempts": r.attempts,
                "b_ref": r.message_ref,
                "b_error": r.error[:1000] if r.error else None,
                "b_next": r.next_attempt_at,
                "b_delivered": r.delivered_at,
                "b_action": r.action,
            }
            for r in results
        ]
        ann_ids = {r.announcement_id for r in results}
        still_open = exists().where(
            DELIVERY.c.announcement_id == ANNOUNCEMENT.c.id,
            DELIVERY.c.purpose == Purpose.ANNOUNCEMENT.value,
            DELIVERY.c.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value]),
        )
        with self.db.engine.begin() as conn:
            conn.execute(stmt, params)
            conn.execute(
                update(ANNOUNCEMENT)
                .where(ANNOUNCEMENT.c.id.in_(ann_ids),
                       ANNOUNCEMENT.c.status == Status.SENDING.value, ~still_open)
                .values(status=Status.SENT.value, updated_at=now)
            )


@dataclass
class PlatformLane:
    """One platform's worker state: its throttle and its in-flight sends."""

    platform: ChatPlatform
    throttle: Throttle
    sent: int = 0
    failed: int = 0
    rate_limited: int = 0
    in_flight: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class DeliveryEngine:
    """Sends what the outbox holds, one lane per platform."""

    def __init__(
        self,
        db: Database,
        render: object,
        platforms: dict[str, ChatPlatform],
        clock: object,
        config: EngineConfig | None = None,
        owner: str | None = None,
    ) -> None:
        from announcements.clock import Clock

        assert hasattr(render, "messages_for")
        self.render = render
        self.clock: Clock = clock  # type: ignore[assignment]
        self.config = config or EngineConfig()
        self.outbox = Outbox(db, owner)
        self.lanes = {
            name: PlatformLane(p, Throttle(p.limits)) for name, p in platforms.items()
        }
        self._pending: list[Result] = []
        self._flush_lock = asyncio.Lock()

    # -- one batch -----------------------------------------------------------------

    async def run_once(self, platform: str) -> int:
        """Claim one batch for ``platform`` and send it; return how many were claimed."""
        cfg = self.config
        rows = await asyncio.to_thread(
            self.outbox.claim, platform, cfg.batch_size, self.clock.now(), cfg.lease
        )
        if not rows:
            return 0
        messages: dict[int, OutboundMessage] = await asyncio.to_thread(
            self.render.messages_for, rows  # type: ignore[attr-defined]
        )
        lane = self.lanes[platform]
        gate = asyncio.Semaphore(cfg.concurrency)
        flusher = asyncio.create_task(self._flush_periodically())
        try:
            await asyncio.gather(*(self._send(lane, gate, r, messages.get(r.id)) for r in rows))
        finally:
            flusher.cancel()
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
            if not claimed:
                break
        return total

    async def _send(
        self, lane: PlatformLane, gate: asyncio.Semaphore, row: Claimed, msg: OutboundMessage | None
    ) -> None:
        async with gate:
            if msg is None:
                self._pending.append(_result(row, DeliveryStatus.CANCELLED,
                                             error="nothing to send any more"))
                return
            await lane.throttle.acquire(row.address)
            lane.in_flight += 1
            try:
                result = await asyncio.wait_for(self._perform(lane, row, msg),
                                                self.config.send_timeout)
            except RateLimited as exc:
                lane.throttle.pause(exc.retry_after)
                lane.rate_limited += 1
                result = _result(row, DeliveryStatus.PENDING, attempts=row.attempts - 1,
                                 error=str(exc), next_attempt_at=self.clock.now()
                                 + timedelta(seconds=exc.retry_after))
            except Unreachable as exc:
                result = _result(row, DeliveryStatus.UNREACHABLE, error=str(exc) or "unreachable")
            except PermanentError as exc:
                lane.failed += 1
                result = _result(row, DeliveryStatus.FAILED, error=str(exc))
            except (TransientError, TimeoutError, OSError, Exception) as exc:  # noqa: BLE001
                result = self._retry_or_fail(lane, row, exc)
            finally:
                lane.in_flight -= 1
            self._pending.append(result)

    async def _perform(self, lane: PlatformLane, row: Claimed, msg: OutboundMessage) -> Result:
        """Send, update or delete, as the row asks."""
        address = row.address or ""
        if row.action == DeliveryAction.UPDATE and row.message_ref:
            await lane.platform.update(address, row.message_ref, msg)
            ref, status = row.message_ref, DeliveryStatus.DELIVERED
        elif row.action == DeliveryAction.DELETE and row.message_ref:
            await lane.platform.delete(address, row.message_ref)
            ref, status = row.message_ref, DeliveryStatus.RECALLED
        else:
            ref, status = await lane.platform.send(address, msg), DeliveryStatus.DELIVERED
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

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval)
            await self.flush()

    async def flush(self) -> None:
        """Record finished sends. A database outage is waited out, never dropped."""
        async with self._flush_lock:
            delay = 0.2
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await asyncio.to_thread(self.outbox.record, batch, self.clock.now())
                except (OperationalError, DBAPIError) as exc:
                    self._pending = batch + self._pending
                    log.warning("cannot record %d results (%s); retrying in %.1fs",
                                len(batch), str(exc).splitlines()[0], delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)

    # -- the long-running loop ---------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve every lane until ``stop`` is set (``crier serve``)."""
        await asyncio.gather(*(self._lane_loop(name, stop) for name in self.lanes))

    def poke(self, platforms: Iterable[str] | None = None) -> None:
        """New rows were written: wake the lanes instead of waiting for the next poll."""
        for name in platforms or self.lanes:
            if name in self.lanes:
                self.lanes[name].wake.set()

    async def _lane_loop(self, name: str, stop: asyncio.Event) -> None:
        lane = self.lanes[name]
        backoff = 0.5
        while not stop.is_set():
            try:
                claimed = await self.run_once(name)
                backoff = 0.5
            except (OperationalError, DBAPIError) as exc:
                log.warning("delivery lane %s: database unavailable (%s); retrying in %.1fs",
                            name, str(exc).splitlines()[0], backoff)
                claimed = 0
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 15.0)
                continue
            if claimed:
                continue
            lane.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lane.wake.wait(), self.config.idle_poll)
