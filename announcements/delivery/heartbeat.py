"""Heartbeats: how a dead engine's leases come back in seconds, not after the lease.

Rules:
- Every engine that claims rows writes its heartbeat (``worker_heartbeat``) at
  least every ``heartbeat_interval``; it claims nothing until a beat is written.
- Rows leased by an engine whose heartbeat is older than ``heartbeat_stale``
  (four intervals) may be claimed at once: that engine is gone.
- An engine whose own last beat is that old (its database refused the write)
  sends nothing more: others may already have its rows. No double sends.
- On SQLite, where one process runs by design, a starting engine forgets every
  other heartbeat, so its predecessor's leases are reclaimed immediately.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, true, update
from sqlalchemy.engine import Connection

from storage.db import Database
from storage.models import Delivery, WorkerHeartbeat

#: Missed heartbeats after which an engine counts as gone.
STALE_BEATS = 4
HEARTBEAT = WorkerHeartbeat.__table__  # type: ignore[attr-defined]
DELIVERY = Delivery.__table__  # type: ignore[attr-defined]


def beat(db: Database, owner: str, now: datetime) -> None:
    """Write ``owner``'s heartbeat (raises if the database refuses it)."""
    with db.engine.begin() as conn:
        done = conn.execute(update(HEARTBEAT).where(HEARTBEAT.c.owner == owner)
                            .values(beat_at=now)).rowcount
        if not done:
            conn.execute(insert(HEARTBEAT).values(owner=owner, beat_at=now, started_at=now))


def forget(db: Database, owner: str) -> None:
    """A graceful stop: this engine's heartbeat goes (its rows were given back)."""
    with db.engine.begin() as conn:
        conn.execute(delete(HEARTBEAT).where(HEARTBEAT.c.owner == owner))


def take_over(db: Database, owner: str) -> int:
    """SQLite: forget every other engine's heartbeat; return how many there were."""
    with db.engine.begin() as conn:
        return conn.execute(delete(HEARTBEAT).where(HEARTBEAT.c.owner != owner)).rowcount


def live_owners(conn: Connection, stale_before: datetime) -> list[str]:
    """The engines with a heartbeat since ``stale_before`` (a handful of rows)."""
    return list(conn.execute(select(HEARTBEAT.c.owner).where(
        HEARTBEAT.c.beat_at >= stale_before)).scalars())


def owner_gone(live: list[str]) -> Any:
    """SQL: the row's lease owner is none of the ``live`` engines. (A list read once per
    claim, not a subquery per leased row: with several engines, each claim meets the
    others' leased rows, hundreds of them.)"""
    owner = DELIVERY.c.lease_owner
    return or_(owner.is_(None), owner.not_in(live)) if live else true()


def stale_after(interval: float) -> timedelta:
    return timedelta(seconds=STALE_BEATS * interval)


def alive(db: Database, now: datetime, interval: float) -> list[str]:
    """The engines with a fresh heartbeat (``crier doctor``, tests)."""
    with db.engine.begin() as conn:
        return list(conn.execute(select(HEARTBEAT.c.owner).where(
            HEARTBEAT.c.beat_at >= now - stale_after(interval))).scalars())
