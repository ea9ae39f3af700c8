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

from sqlalchemy import delete, exists, insert, select, update

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


def owner_gone(stale_before: datetime) -> Any:
    """SQL: the row's lease owner has no heartbeat since ``stale_before``."""
    return ~exists().where(HEARTBEAT.c.owner == DELIVERY.c.lease_owner,
                           HEARTBEAT.c.beat_at >= stale_before)


def stale_after(interval: float) -> timedelta:
    return timedelta(seconds=STALE_BEATS * interval)


def alive(db: Database, now: datetime, interval: float) -> list[str]:
    """The engines with a fresh heartbeat (``crier doctor``, tests)."""
    with db.engine.begin() as conn:
        return list(conn.execute(select(HEARTBEAT.c.owner).where(
            HEARTBEAT.c.beat_at >= now - stale_after(interval))).scalars())
