"""When each recipient gets a send.

Rule: a send goes out at its time (``at:``, or now) for everyone; a ``local``
send goes out at that wall-clock time in each recipient's own zone; unless
``urgent``, it then waits for the recipient's working hours (``quiet.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from announcements.quiet import QuietHours
from announcements.timespec import zone
from storage.models import Announcement
from storage.models import Person as PersonRow


def due_times(s: Session, ann: Announcement, ids: list[int], base: datetime,
              quiet: QuietHours | None) -> dict[int, datetime]:
    """When each of ``ids`` should get ``ann``, starting from ``base``."""
    local = ann.local_time and ann.send_at is not None
    held = None if ann.urgent else quiet
    if not local and held is None:
        return dict.fromkeys(ids, base)
    zones = dict(s.execute(select(col(PersonRow.id), col(PersonRow.timezone))).tuples().all())
    wall = None
    if local:
        author = s.get(PersonRow, ann.author_id)
        wall = base.astimezone(zone(author.timezone if author else "UTC")).replace(tzinfo=None)
    cache: dict[str, datetime] = {}
    due: dict[int, datetime] = {}
    for pid in ids:
        tz = zones.get(pid) or "UTC"
        if tz not in cache:
            when = base if wall is None else wall.replace(tzinfo=zone(tz)).astimezone(
                base.tzinfo)
            cache[tz] = held.next_open(when, tz) if held else when
        due[pid] = cache[tz]
    return due
