"""Pacing, without waiting: the throttle runs on a fake clock that senders advance."""

from __future__ import annotations

import random

import pytest

from announcements.delivery.throttle import Throttle
from announcements.ports import RateLimits


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def send_times(throttle: Throttle, clock: Clock, n: int, conversation: str | None = None,
               late: float = 0.0, seed: int = 3) -> list[float]:
    """When ``n`` requests go out if each sender wakes up to ``late`` seconds late."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        while (wait := throttle.delay(conversation)) > 0:
            clock.t += wait + rng.uniform(0, late)
        throttle.take(conversation)
        out.append(clock.t)
    return out


def test_the_long_run_rate_is_the_limit_even_when_senders_wake_up_late():
    clock = Clock()
    times = send_times(Throttle(RateLimits(300, 0), clock), clock, 3001, late=0.002)
    rate = 3000 / (times[-1] - times[0])
    assert 297 <= rate <= 300.5  # sleeping past a slot does not lose it


def test_never_faster_than_the_limit_over_any_second():
    clock = Clock()
    times = send_times(Throttle(RateLimits(50, 0, burst=5), clock), clock, 500, late=0.004)
    for i, t in enumerate(times):
        within = sum(1 for u in times[i:] if u < t + 1.0)
        assert within <= 50 + 5 + 1  # the rate, its burst, and one caught-up slot


def test_a_burst_goes_at_once_then_the_rate_applies():
    clock = Clock()
    times = send_times(Throttle(RateLimits(10, 0, burst=3), clock), clock, 5)
    assert times[:3] == [1000.0] * 3
    assert times[3] == pytest.approx(1000.1) and times[4] == pytest.approx(1000.2)


def test_retry_after_stops_everything_until_it_has_passed():
    clock = Clock()
    throttle = Throttle(RateLimits(100, 0, burst=10), clock)
    throttle.pause(7.0)
    times = send_times(throttle, clock, 3)
    assert times[0] == pytest.approx(1007.0)
    assert times[1] - times[0] >= 0.01 - 1e-9  # no burst of the slots the pause skipped


def test_one_conversation_is_paced_on_its_own():
    clock = Clock()
    throttle = Throttle(RateLimits(0, 1.0), clock)
    assert send_times(throttle, clock, 3, "C1") == [1000.0, 1001.0, 1002.0]
    assert throttle.delay("C2") == 0.0


def test_no_limits_never_wait():
    clock = Clock()
    assert send_times(Throttle(RateLimits(0, 0), clock), clock, 100) == [1000.0] * 100
