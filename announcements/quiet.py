"""Quiet hours: non-urgent messages wait for the recipient's working hours.

Rule: a non-urgent announcement or nudge is delivered only within the
recipient's working hours (default 08:00-20:00, Monday to Friday, in their own
time zone); outside them it is held until the next opening. ``urgent`` skips
this. Approval requests and notices to authors are not held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from announcements.errors import CrierError
from announcements.timespec import DAYS, parse_clock, zone


@dataclass(frozen=True)
class QuietHours:
    start: time = time(8, 0)
    end: time = time(20, 0)
    workdays: frozenset[int] = frozenset(range(5))  # Monday=0

    def next_open(self, when: datetime, tz: str) -> datetime:
        """``when`` itself if it falls in working hours there, else the next opening."""
        local = when.astimezone(zone(tz))
        for _ in range(8):
            day_start = local.replace(hour=self.start.hour, minute=self.start.minute,
                                      second=0, microsecond=0)
            day_end = local.replace(hour=self.end.hour, minute=self.end.minute,
                                    second=0, microsecond=0)
            if local.weekday() in self.workdays:
                if local < day_start:
                    return day_start.astimezone(when.tzinfo)
                if local < day_end:
                    return when
            nxt = (local + timedelta(days=1)).replace(hour=self.start.hour,
                                                      minute=self.start.minute, second=0,
                                                      microsecond=0)
            local = nxt
            if local.weekday() in self.workdays:
                return local.astimezone(when.tzinfo)
        return when  # no working day configured: never hold

    def describe(self) -> str:
        days = ",".join(DAYS[d] for d in sorted(self.workdays))
        return f"{self.start:%H:%M}-{self.end:%H:%M} {days}"


def parse_quiet_hours(hours: str | None, days: str | None) -> QuietHours | None:
    """``CRIER_WORKING_HOURS=08:00-20:00`` and ``CRIER_WORKING_DAYS=mon-fri``; ``off`` disables."""
    if hours and hours.strip().lower() in ("off", "none", "0"):
        return None
    start, end = time(8, 0), time(20, 0)
    if hours:
        a, _, b = hours.partition("-")
        pa, pb = parse_clock(a), parse_clock(b)
        if pa is None or pb is None or pa >= pb:
            raise CrierError(f"CRIER_WORKING_HOURS={hours!r} is not a range of the day",
                             "Write e.g. 08:00-20:00, or off.")
        start, end = pa, pb
    workdays = frozenset(range(5))
    if days:
        workdays = _parse_days(days)
    return QuietHours(start, end, workdays)


def _parse_days(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        a, _, b = part.partition("-")
        if a not in DAYS or (b and b not in DAYS):
            raise CrierError(f"CRIER_WORKING_DAYS={text!r} is not a list of days",
                             "Write e.g. mon-fri or mon,tue,wed,thu,fri,sat.")
        i, j = DAYS.index(a), DAYS.index(b) if b else DAYS.index(a)
        out.update(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
    return frozenset(out)
