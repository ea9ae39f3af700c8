"""When recurring things fire, computed with APScheduler's triggers."""

from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from announcements.errors import CrierError
from announcements.timespec import EVERY_FORMS, Every, zone

#: How far ahead a cron rule must fire at least once to count as valid.
HORIZON_YEARS = 5


def trigger(every: Every, tz: str, start: datetime) -> CronTrigger | IntervalTrigger:
    if every.interval is not None:
        return IntervalTrigger(seconds=int(every.interval.total_seconds()), start_date=start,
                               timezone=zone(tz))
    assert every.cron is not None
    try:
        return CronTrigger.from_crontab(every.cron, timezone=zone(tz))
    except ValueError as exc:
        raise CrierError(f"cannot read the cron expression `{every.text}`: {exc}",
                         f"Write one of {EVERY_FORMS}.") from None


def next_fire(every: Every, tz: str, after: datetime) -> datetime | None:
    """The next occurrence strictly after ``after``, or None if it never fires."""
    if every.interval is not None:
        return after + every.interval
    trig = trigger(every, tz, after)
    limit = after.replace(year=after.year + HORIZON_YEARS)
    try:
        nxt = trig.get_next_fire_time(None, after)
    except (ValueError, OverflowError):
        return None
    if nxt is None or nxt > limit:
        return None
    return nxt


def shortest_gap(every: Every, tz: str, after: datetime, samples: int = 200) -> timedelta | None:
    """The shortest time between two fires of ``every`` (over its next ``samples``
    fires for a cron rule); None if it fires less than twice."""
    if every.interval is not None:
        return every.interval
    trig = trigger(every, tz, after)
    gap: timedelta | None = None
    last = trig.get_next_fire_time(None, after)
    for _ in range(samples):
        if last is None:
            break
        nxt = trig.get_next_fire_time(last, last + timedelta(microseconds=1))
        if nxt is None or nxt <= last:
            break
        gap = nxt - last if gap is None else min(gap, nxt - last)
        last = nxt
    return gap


def duration_text(span: timedelta) -> str:
    """``1h``, ``90m``, ``2d``: how ``parse_duration`` would read it back."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
