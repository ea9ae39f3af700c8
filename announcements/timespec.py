"""WHEN and EVERY: the time phrases of the command grammar.

Parsing is in two steps. ``parse_when`` checks the words alone (the grammar
uses it to know where an ``at:`` value ends); ``When.resolve`` turns them into
an instant in the author's time zone, and refuses a time in the past.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from announcements.errors import CrierError

WHEN_FORMS = (
    "`2026-12-01 09:00`, `09:00`, `9am`, `tomorrow 9am`, `mon 09:00`, `in 10m`, `in 30s`"
)
EVERY_FORMS = "`24h`, `30m`, `mon 09:00`, `weekday 17:00`, `daily 09:00`, or cron `0 9 * * 1`"

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {d: i for i, d in enumerate(DAYS)} | {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4,
    "saturday": 5, "sunday": 6, "tues": 1, "thur": 3, "thurs": 3,
}
_UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
          "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
          "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800,
          "weeks": 604800}
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")
_DURATION = re.compile(r"^(\d+)\s*([a-z]+)$")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CrierError(
            f"unknown time zone {name!r}",
            "Use an IANA name such as Europe/Berlin, America/New_York or UTC.",
        ) from None


def parse_clock(text: str) -> time | None:
    """``09:00``, ``9:30``, ``9am``, ``5:15pm`` -> time; None if it is not a clock time."""
    m = _CLOCK.match(text.strip().lower())
    if not m:
        return None
    hour, minute, half = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if m.group(2) is None and half is None:
        return None  # a bare number is not a time
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def parse_duration(text: str) -> timedelta | None:
    """``10m``, ``30s``, ``2 hours``, ``24h`` -> timedelta; None otherwise."""
    m = _DURATION.match(text.strip().lower())
    if not m or m.group(2) not in _UNITS:
        return None
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    return timedelta(seconds=seconds) if seconds > 0 else None


@dataclass(frozen=True)
class When:
    """A parsed WHEN phrase, not yet tied to a clock or zone."""

    text: str
    delay: timedelta | None = None
    on_date: date | None = None
    day: str | None = None  # "today" | "tomorrow" | weekday name
    at: time | None = None

    def resolve(self, now: datetime, tz: str, *, allow_past: bool = False) -> datetime:
        """The instant meant, in UTC. A time that has passed is an error."""
        if self.delay is not None:
            return now + self.delay
        assert self.at is not None
        zi = zone(tz)
        local_now = now.astimezone(zi)
        if self.on_date is not None:
            target_date = self.on_date
        elif self.day == "tomorrow":
            target_date = local_now.date() + timedelta(days=1)
        elif self.day in _DAY_ALIASES:
            ahead = (_DAY_ALIASES[self.day] - local_now.weekday()) % 7
            target_date = local_now.date() + timedelta(days=ahead)
            if ahead == 0 and local_now.time() >= self.at:
                target_date += timedelta(days=7)
        else:
            target_date = local_now.date()
        result = datetime.combine(target_date, self.at, tzinfo=zi).astimezone(now.tzinfo)
        if result <= now and not allow_past:
            shown = result.astimezone(zi).strftime("%Y-%m-%d %H:%M")
            raise CrierError(
                f"`{self.text}` is in the past ({shown} {tz})",
                f"Pick a later time, e.g. `tomorrow {self.at:%H:%M}` or `in 10m`.",
            )
        return result


def parse_when(text: str) -> When | None:
    """Recognise a WHEN phrase; None when the words are not one."""
    raw = " ".join(text.split())
    words = raw.lower().split(" ")
    if not raw:
        return None
    if words[0] == "in" and len(words) in (2, 3):
        delay = parse_duration("".join(words[1:]))
        return When(raw, delay=delay) if delay else None
    if len(words) == 1:
        at = parse_clock(words[0])
        return When(raw, at=at) if at else None
    if len(words) == 2:
        head, tail = words
        at = parse_clock(tail)
        if at is None:
            return None
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", head):
            try:
                return When(raw, on_date=date.fromisoformat(head), at=at)
            except ValueError:
                return None
        if head in ("today", "tomorrow") or head in _DAY_ALIASES:
            return When(raw, day=head, at=at)
    return None


def require_when(text: str, option: str = "at") -> When:
    when = parse_when(text)
    if when is None:
        raise CrierError(
            f"cannot read `{option}:{text}` as a time",
            f"Write one of {WHEN_FORMS} (in your time zone).",
        )
    return when


@dataclass(frozen=True)
class Every:
    """A recurrence: a fixed interval, or a cron rule evaluated in a time zone."""

    text: str
    interval: timedelta | None = None
    cron: str | None = None  # five-field crontab

    def describe(self) -> str:
        return self.text


def parse_every(text: str) -> Every | None:
    """``24h``, ``mon 09:00``, ``weekday 17:00``, ``daily 9am`` or a crontab."""
    raw = " ".join(text.split())
    words = raw.lower().split(" ")
    if len(words) == 1:
        interval = parse_duration(words[0])
        if interval is None:
            return None
        if interval < timedelta(minutes=1):
            return None
        return Every(raw, interval=interval)
    if len(words) == 2:
        head, at = words[0], parse_clock(words[1])
        if at is None:
            return None
        if head in _DAY_ALIASES:
            dow = DAYS[_DAY_ALIASES[head]]
        elif head in ("weekday", "weekdays"):
            dow = "mon-fri"
        elif head in ("daily", "day", "everyday"):
            dow = "*"
        else:
            return None
        return Every(raw, cron=f"{at.minute} {at.hour} * * {dow}")
    if len(words) == 5 and all(re.fullmatch(r"[\d*/,\-a-z]+", w) for w in words):
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(raw.lower())
        except ValueError:
            return None
        return Every(raw, cron=raw.lower())
    return None


def require_every(text: str, option: str = "every") -> Every:
    every = parse_every(text)
    if every is None:
        raise CrierError(
            f"cannot read `{option}:{text}` as a schedule",
            f"Write one of {EVERY_FORMS}.",
        )
    return every
