"""Sending one claimed row: the throttle, the platform call, and what its answer
means for the row.

Rules:
- A row is never sent once its lease may have run out, or once our heartbeat
  may look stale: another worker may hold it by then.
- 429: no request to that platform is started until ``Retry-After`` has passed
  (counted from the moment the 429 reached Crier); the row is due again then,
  with its attempt given back. 5xx/timeouts: exponential backoff with jitter, at
  most ``max_attempts``, then ``failed`` with the reason. Unreachable (blocked,
  deactivated, not found): never retried.
- No lane sends while ``max_unrecorded`` results wait to be written.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta
from typing import Any

from announcements.clock import Clock
from announcements.delivery.config import EngineConfig
from announcements.delivery.heartbeat import stale_after
from announcements.delivery.lanes import PlatformLane
from announcements.delivery.outbox import Claimed, Result, Version
from announcements.ports import PermanentError, RateLimited, TransientError, Unreachable
from announcements.types import DeliveryAction, DeliveryStatus, OutboundMessage

log = logging.getLogger("crier.delivery")


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



class Sender:
    """The engine's send path (``DeliveryEngine`` holds the state it uses)."""

    config: EngineConfig
    clock: Clock
    _results: list[Result]
    _flush_now: asyncio.Event | None
    _held: dict[int, datetime]
    _release: set[int]
    _started: set[int]
    _stopping: bool
    _beat_at: datetime | None

    def _margin(self) -> timedelta:
        return min(timedelta(seconds=self.config.send_timeout), self.config.lease / 4)

    def _lost(self, deadline: datetime | None) -> bool:
        """May another worker have this row by now? Its lease is nearly out, or our
        heartbeat is about to look stale (the database stopped taking it)."""
        now = self.clock.now()
        if deadline and now + self._margin() >= deadline:
            return True
        interval = self.config.heartbeat_interval
        return self._beat_at is not None and now + timedelta(seconds=interval) >= (
            self._beat_at + stale_after(interval))

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
        if self._stopping or self._lost(deadline):
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
