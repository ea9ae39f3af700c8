"""Pacing, without waiting: the throttle runs on a fake clock that senders advance."""

from __future__ import annotations

import random

import pytest

from announcements.delivery.config import merged_limits, parse_limits
from announcements.delivery.throttle import DEFAULT_RETRY_AFTER, Throttle
from announcements.ports import RateLimits
from bot.settings import Settings
from bot.slack.platform import make_platform
from bot.telegram.platform import TELEGRAM_LIMITS


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


def test_an_adaptive_lane_climbs_to_its_ceiling_while_no_429_comes():
    clock = Clock()
    throttle = Throttle(RateLimits(8, 0, 1, ceiling=38), clock)
    times = send_times(throttle, clock, 2000)
    assert throttle.rate == 38  # thirty steps of one a second, then no higher
    last_second = [t for t in times if t > times[-1] - 1]
    assert len(last_second) <= 39


def test_a_429_pauses_then_resumes_at_a_lower_rate_once_per_pause():
    clock = Clock()
    throttle = Throttle(RateLimits(100, 0, 1, ceiling=200), clock)
    throttle.pause(1.0)
    throttle.pause(1.0)  # another request of the same burst answered 429 too
    assert throttle.rate == 75
    assert throttle.delay(None) == pytest.approx(1.0)
    clock.t += 1.0
    send_times(throttle, clock, 50)
    assert throttle.rate == 75  # no rise within a second of the pause
    send_times(throttle, clock, 80)  # a second more
    assert throttle.rate == pytest.approx(75 + 100 / 30 / 2)  # a step half as large as before


def test_a_ceiling_equal_to_the_rate_never_adapts():
    clock = Clock()
    throttle = Throttle(RateLimits(30, 1, 1, ceiling=30), clock)
    send_times(throttle, clock, 300)
    throttle.pause(1.0)
    assert not throttle.adaptive and throttle.rate == 30


def test_a_429_without_retry_after_gets_the_default_pause():
    clock = Clock()
    throttle = Throttle(RateLimits(10, 0), clock)
    throttle.pause(0)
    assert throttle.delay(None) == DEFAULT_RETRY_AFTER >= 1


def test_a_ceiling_below_the_rate_is_a_configuration_error():
    with pytest.raises(ValueError, match="the ceiling 5 is below the starting rate 8"):
        parse_limits("CRIER_RATE_LIMIT_SLACK", "8,1,10,5")
    assert parse_limits("CRIER_RATE_LIMIT_SLACK", "8,1,10,150").ceiling == 150


def test_an_override_without_ceiling_keeps_slacks_adaptive_default():
    slack = make_platform(Settings(slack_bot_token="xoxb-1", slack_signing_secret="x"))
    assert slack.limits.ceiling > slack.limits.per_second
    kept = merged_limits(parse_limits("CRIER_RATE_LIMIT_SLACK", "10,1"), slack.limits)
    assert kept.ceiling == slack.limits.ceiling and kept.per_second == 10
    off = merged_limits(parse_limits("CRIER_RATE_LIMIT_SLACK", "10,1,1,10"), slack.limits)
    assert not Throttle(off).adaptive
    telegram = Throttle(merged_limits(None, TELEGRAM_LIMITS))
    assert not telegram.adaptive  # Telegram documents its limit
