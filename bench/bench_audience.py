"""Audience resolution and fan-out for a large directory.

    .venv/bin/python bench/bench_audience.py [--people 100000] [--db sqlite|postgresql://...]

Prints how long resolving typical audiences takes (median of 5 runs) and how
long the approval-time fan-out (one outbox row per recipient) takes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from announcements.audience import resolve  # noqa: E402
from announcements.delivery.fanout import Channels, enqueue  # noqa: E402
from announcements.types import Purpose  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Announcement, Person  # noqa: E402

DEPARTMENTS = ["Engineering", "Sales", "Marketing", "Customer Success", "Finance", "People",
               "Operations", "Legal", "Support", "Research"]
LOCATIONS = ["Berlin", "London", "New York", "Singapore", "Austin", "Paris"]


def populate(db: Database, n: int) -> None:
    now = datetime.now(UTC)
    rng = random.Random(7)
    rows = [{"email": f"person{i}@example.com", "name": f"Person {i}",
             "department": rng.choice(DEPARTMENTS), "location": rng.choice(LOCATIONS),
             "timezone": "UTC", "active": rng.random() > 0.02, "created_at": now,
             "updated_at": now} for i in range(n)]
    with db.session() as s:
        for start in range(0, n, 10_000):
            s.execute(insert(Person), rows[start:start + 10_000])
        s.add(Announcement(kind="message", author_id=1, text="bench", audience="all",
                           status="approved", created_at=now, updated_at=now))


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--db", default=None, help="database URL (default: a temporary SQLite)")
    args = parser.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    db = Database(url)
    db.migrate()
    t = time.perf_counter()
    populate(db, args.people)
    print(f"directory: {args.people:,} people on {db.url.get_backend_name()} "
          f"(loaded in {time.perf_counter() - t:.1f}s)")
    for spec in ("all", "Engineering,Sales", "loc:Berlin,-Sales", "all,-Engineering,-loc:Paris"):
        def run(spec: str = spec) -> int:
            with db.session() as s:
                return resolve(s, spec).size
        seconds, size = timed(run)
        print(f"resolve {spec!r:32} -> {size:>7,} people in {seconds * 1000:7.1f} ms (median of 5)")

        def ids(spec: str = spec) -> int:
            with db.session() as s:
                return len(resolve(s, spec).person_ids(s))
        seconds, size = timed(ids)
        print(f"  ... and list their ids: {seconds * 1000:7.1f} ms")
    with db.session() as s:
        ids = resolve(s, "all").person_ids(s)
    t = time.perf_counter()
    with db.session() as s:
        written = enqueue(s, Channels(), 1, ids, Purpose.ANNOUNCEMENT, datetime.now(UTC))
    print(f"fan-out: {written:,} outbox rows written in {time.perf_counter() - t:.2f}s "
          "(one transaction)")


if __name__ == "__main__":
    main()
