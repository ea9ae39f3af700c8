"""WHEN and EVERY: the time phrases of the command grammar.

Parsing is in two steps. ``parse_when`` checks the words alone (the grammar
uses it to know where an ``at:`` value ends); ``When.resolve`` turns them into
an instant in the author's time zone, and refuses a time in the past.

Words that are not a time give None; words shaped like a time that cannot be one
are a ``CrierError`` naming the word: a clock past 23:59 (``25:00``), a date that
does not exist, a delay or interval longer than ``MAX_DURATION_DAYS``; a date
outside ``MIN_YEAR``-``MAX_YEAR`` is refused by ``When.resolve``. So every instant
computed from a command is a date Python and both databases hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from announcements.errors import CrierError
from announcements.limits import MAX_DURATION_DAYS, MAX_YEAR, MIN_YEAR

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
# ASCII digits only: "²" or "٣" are digits to Unicode but no clock or count.
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$", re.ASCII)
_CLOCK_LIKE = re.compile(r"^\d+(:\d+)+\s*(am|pm)?$|^\d+\s*(am|pm)$", re.ASCII)
_DURATION = re.compile(r"^(\d+)\s*([a-z]+)$", re.ASCII)
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$", re.ASCII)
MAX_DURATION = timedelta(days=MAX_DURATION_DAYS)


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
    try:
        return _clock(text)
    except CrierError:
        return None


def _clock(text: str) -> time | None:
    """Like ``parse_clock``, but a word shaped like a clock time that no clock shows
    (``25:00``, ``13pm``) is an error naming that word."""
    word = text.strip().lower()
    m = _CLOCK.match(word)
    if not m:
        if _CLOCK_LIKE.match(word):
            raise _bad_clock(text.strip())
        return None
    hour, minute, half = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if m.group(2) is None and half is None:
        return None  # a bare number is not a time
    if half:
        if not 1 <= hour <= 12:
            raise _bad_clock(text.strip())
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        raise _bad_clock(text.strip())
    return time(hour, minute)


def _bad_clock(word: str) -> CrierError:
    return CrierError(
        f"`{shorten(word)}` is not a time of day",
        "Write hours 0-23 and minutes 00-59, e.g. `09:00`, `17:30` or `9am`.",
    )


def parse_duration(text: str) -> timedelta | None:
    """``10m``, ``30s``, ``2 hours``, ``24h`` -> timedelta; None otherwise.

    A duration is at most ``MAX_DURATION_DAYS`` long; a longer one is an error.
    """
    m = _DURATION.match(text.strip().lower())
    if not m or m.group(2) not in _UNITS:
        return None
    digits = m.group(1).lstrip("0") or "0"
    # Compare digit counts first: a thousand-digit number never reaches int().
    if len(digits) > 12 or int(digits) * _UNITS[m.group(2)] > MAX_DURATION.total_seconds():
        raise CrierError(
            f"`{shorten(text.strip())}` is longer than {MAX_DURATION_DAYS} days",
            f"Use at most a year, e.g. `30d`, `12 weeks` or `{MAX_DURATION_DAYS}d`.",
        )
    seconds = int(digits) * _UNITS[m.group(2)]
    return timedelta(seconds=seconds) if seconds > 0 else None


def shorten(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters for an error message, with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class When:
    """A parsed WHEN phrase, not yet tied to a clock or zone."""

    text: str
    delay: timedelta | None = None
    on_date: date | None = None
    day: str | None = None  # "today" | "tomorrow" | weekday name
    at: time | None = None

    def resolve(self, now: datetime, tz: str, *, allow_past: bool = False) -> datetime:
        """The instant meant, in UTC. A time that has passed is an error, and so is a
        date outside ``MIN_YEAR``-``MAX_YEAR`` (checked here, where the forms' dates
        arrive too)."""
        if self.delay is not None:
            return now + self.delay
        assert self.at is not None
        zi = zone(tz)
        local_now = now.astimezone(zi)
        if self.on_date is not None:
            if not MIN_YEAR <= self.on_date.year <= MAX_YEAR:
                raise CrierError(
                    f"`{self.on_date}` is outside the years {MIN_YEAR}-{MAX_YEAR}",
                    "Pick a date within the next year, e.g. `tomorrow 09:00`.")
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
    """Recognise a WHEN phrase; None when the words are not one (see the module doc
    for the words that are an error instead)."""
    raw = " ".join(text.split())
    words = raw.lower().split(" ")
    if not raw:
        return None
    if words[0] == "in" and len(words) in (2, 3):
        delay = parse_duration("".join(words[1:]))
        return When(raw, delay=delay) if delay else None
    if len(words) == 1:
        at = _clock(words[0])
        return When(raw, at=at) if at else None
    if len(words) == 2:
        head, tail = words
        is_date = bool(_ISO_DATE.match(head))
        if not (is_date or head in ("today", "tomorrow") or head in _DAY_ALIASES):
            return None
        at = _clock(tail)
        if at is None:
            return None
        if is_date:
            return When(raw, on_date=_date(head), at=at)
        return When(raw, day=head, at=at)
    return None


def _date(word: str) -> date:
    """A ``YYYY-MM-DD`` word as a date (its year is checked by ``When.resolve``)."""
    try:
        day = date.fromisoformat(word)
    except ValueError:
        raise CrierError(f"`{word}` is not a date", "Write YYYY-MM-DD, e.g. `2026-12-01`.")\
            from None
    return day


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
        head = words[0]
        if head in _DAY_ALIASES:
            dow = DAYS[_DAY_ALIASES[head]]
        elif head in ("weekday", "weekdays"):
            dow = "mon-fri"
        elif head in ("daily", "day", "everyday"):
            dow = "*"
        else:
            return None
        at = _clock(words[1])
        if at is None:
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
