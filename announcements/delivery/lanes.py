"""One platform's lane (its throttle, counters and wake-ups) and the small
asyncio helpers the engine's loops share."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from announcements.delivery.throttle import Throttle
from announcements.ports import ChatPlatform


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random.randrange(16**6):06x}"



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



async def wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


async def wait_any(events: Iterable[asyncio.Event], timeout: float) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
