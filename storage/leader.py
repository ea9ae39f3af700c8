"""Which process runs the scheduler.

APScheduler 3 must not share a job store between running schedulers, so only
one process schedules. On PostgreSQL that process holds a session-level
advisory lock on a dedicated connection; if it dies, its connection closes,
the lock is released and another process takes it on its next try. On SQLite
Crier runs as one process, which always leads.
"""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.db import Database

log = logging.getLogger("crier.leader")
#: The advisory lock is (SCHEDULER_LOCK, hash of database and schema), so two Crier
#: installations in different schemas or databases of one server do not block each other.
SCHEDULER_LOCK = 0x43524945  # "CRIE"
_SCOPE = "hashtext(current_database() || '.' || current_schema())"


class Leadership:
    def __init__(self, db: Database, key: int = SCHEDULER_LOCK) -> None:
        self.db = db
        self.key = key
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self.db.is_sqlite or self._conn is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True while this process leads."""
        if self.db.is_sqlite:
            return True
        if self._conn is not None:
            if self._alive():
                return True
            self._drop()
        conn = self.db.engine.connect()
        try:
            got = conn.execute(text(f"SELECT pg_try_advisory_lock(:k, {_SCOPE})"),
                               {"k": self.key}).scalar()
            conn.commit()
        except Exception:
            conn.close()
            raise
        if got:
            self._conn = conn
            log.info("this process now runs the scheduler")
            return True
        conn.close()
        return False

    def _alive(self) -> bool:
        assert self._conn is not None
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
            return True
        except Exception:  # noqa: BLE001 - a dead connection means the lock is gone
            log.warning("lost the scheduler lock's connection")
            return False

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text(f"SELECT pg_advisory_unlock(:k, {_SCOPE})"),
                                   {"k": self.key})
                self._conn.commit()
            except Exception:  # noqa: BLE001
                pass
        self._drop()
