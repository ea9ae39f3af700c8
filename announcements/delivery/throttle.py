"""Per-platform pacing: a steady rate overall, a slower one per conversation,
and a hard pause after a 429 (``Retry-After``).

Each platform has its own ``Throttle``, so one platform's throttling never
slows another's.

The overall rate is a GCRA (a token bucket kept as one timestamp): requests are
spaced ``1/rate`` apart, ``burst`` may go at once, and a sender that woke up a
little late (event-loop jitter, at most ``CATCH_UP`` seconds) may use the slot it
missed, so the long-run rate is the configured one, not a bit less.

Adaptive pacing (a ``ceiling`` above ``per_second``): after ``RAISE_EVERY``
seconds without a 429 the rate rises by one step (a thirtieth of the way from the
starting rate to the ceiling), never above the ceiling; a 429 pauses the lane for
its Retry-After and then resumes at ``DECREASE`` times the rate it had (several
429s of one pause count once), never below ``FLOOR``, and later steps are half
as large (down to an eighth of the first): near a limit it has found, the lane
probes gently. So it settles just under the platform's real limit.
Per-conversation limits never adapt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from announcements.ports import RateLimits

_PRUNE_AT = 20_000
#: How late a sender may be and still use its slot (compensates sleep overshoot).
CATCH_UP = 0.02
#: Seconds without a 429 before an adaptive lane raises its rate one step.
RAISE_EVERY = 1.0
#: Steps from the starting rate to the ceiling.
STEPS = 30
#: After a 429 an adaptive lane resumes at this share of its rate.
DECREASE = 0.75
#: The least rate an adaptive lane falls to (messages per second).
FLOOR = 1.0
#: Senders that may wait for a slot at once (the rest queue behind them).
WATCHERS = 4
#: Pause after a 429 that named no Retry-After (seconds).
DEFAULT_RETRY_AFTER = 2.0


class Throttle:
    def __init__(self, limits: RateLimits | None, monotonic: Callable[[], float] = time.monotonic):
        self._now = monotonic
        rate = limits.per_second if limits else 0
        conv = limits.per_conversation if limits else 0
        self.burst = max(1, limits.burst if limits else 1)
        self.rate = 0.0
        self.interval = 0.0
        self._tolerance = 0.0
        self._set_rate(rate if rate and rate > 0 else 0.0)
        self.ceiling = limits.ceiling if limits and rate and limits.ceiling > rate else 0.0
        self._step = (self.ceiling - self.rate) / STEPS if self.ceiling else 0.0
        self._least_step = self._step / 8
        self.conversation_interval = 1.0 / conv if conv and conv > 0 else 0.0
        self._tat = 0.0  # GCRA's theoretical arrival time of the next request
        self._conversation_next: dict[str, float] = {}
        self.paused_until = 0.0
        self.pauses = 0
        self._calm_since = self._now()  # last 429 or rate change
        self._gate: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    @property
    def adaptive(self) -> bool:
        return bool(self.ceiling)

    def _set_rate(self, rate: float) -> None:
        self.rate = rate
        self.interval = 1.0 / rate if rate else 0.0
        self._tolerance = self.interval * (self.burst - 1)

    def pause(self, seconds: float) -> None:
        """Retry-After: no request to this platform until ``seconds`` have passed
        (``DEFAULT_RETRY_AFTER`` when the platform named none)."""
        now = self._now()
        if seconds <= 0:
            seconds = DEFAULT_RETRY_AFTER
        if self.adaptive and now >= self.paused_until:  # one decrease per pause
            self._set_rate(max(FLOOR, self.rate * DECREASE))
            self._step = max(self._least_step, self._step / 2)
        self.paused_until = max(self.paused_until, now + seconds)
        self._calm_since = self.paused_until
        # Then one request, and the steady rate: no burst of the slots the pause skipped.
        self._tat = max(self._tat, self.paused_until + self._tolerance)
        self.pauses += 1

    def delay(self, conversation: str | None) -> float:
        """Seconds to wait before a request to ``conversation`` may go out (0 = now)."""
        now = self._now()
        waits = [self.paused_until - now]
        if self.interval:
            waits.append(self._tat - self._tolerance - now)
        if conversation and self.conversation_interval:
            waits.append(self._conversation_next.get(conversation, 0.0) - now)
        return max(0.0, *waits)

    def take(self, conversation: str | None) -> None:
        now = self._now()
        if self.adaptive and now - self._calm_since >= RAISE_EVERY and self.rate < self.ceiling:
            self._set_rate(min(self.ceiling, self.rate + self._step))
            self._calm_since = now
        if self.interval:
            if self._tat < now - CATCH_UP:  # idle, or later than we make up for
                self._tat = now
            self._tat += self.interval  # a slot missed by less than CATCH_UP is still used
        if conversation and self.conversation_interval:
            if len(self._conversation_next) > _PRUNE_AT:
                self._conversation_next = {
                    k: v for k, v in self._conversation_next.items() if v > now
                }
            self._conversation_next[conversation] = now + self.conversation_interval

    async def acquire(self, conversation: str | None = None) -> None:
        """Wait for a slot. At most ``WATCHERS`` senders watch the clock at a time, the
        others queue (first come, first served): many senders then cost a few wake-ups
        per slot, not one each. Re-checks after every sleep, since a 429 may arrive
        meanwhile."""
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate[0] is not loop:  # a semaphore serves one loop
            self._gate = (loop, asyncio.Semaphore(WATCHERS))
        async with self._gate[1]:
            while True:
                wait = self.delay(conversation)
                if wait <= 0:
                    self.take(conversation)
                    return
                await asyncio.sleep(wait)
