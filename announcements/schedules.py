"""When recurring things fire, computed with APScheduler's triggers."""

from __future__ import annotations

from datetime import datetime

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
