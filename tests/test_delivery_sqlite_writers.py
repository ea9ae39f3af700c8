"""SQLite writers of one process take turns through a lock (storage.db.serialize_writers):
a turn always ends, however the transaction ends, so no writer waits for nothing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, text

from storage.models import AuditEvent

AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]


def write(db, note: str) -> None:  # type: ignore[no-untyped-def]
    with db.engine.begin() as conn:
        conn.execute(insert(AUDIT).values(at=datetime.now(UTC), action=note))


def elsewhere(db) -> float:  # type: ignore[no-untyped-def]
    """Seconds another thread needs for one write."""
    took: list[float] = []

    def run() -> None:
        started = time.perf_counter()
        write(db, "other thread")
        took.append(time.perf_counter() - started)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert took, "the other thread never got to write"
    return took[0]


@pytest.fixture
def sqlite(db):  # type: ignore[no-untyped-def]
    if not db.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL has row locks and many writers")
    return db


def test_a_turn_ends_with_commit_rollback_or_an_abandoned_connection(sqlite):
    write(sqlite, "committed")
    assert elsewhere(sqlite) < 1.0

    with pytest.raises(RuntimeError), sqlite.engine.begin() as conn:
        conn.execute(insert(AUDIT).values(at=datetime.now(UTC), action="rolled back"))
        raise RuntimeError("boom")
    assert elsewhere(sqlite) < 1.0

    conn = sqlite.engine.connect()
    conn.execute(insert(AUDIT).values(at=datetime.now(UTC), action="abandoned"))
    conn.close()  # neither commit nor rollback by the caller
    assert elsewhere(sqlite) < 1.0
    with sqlite.engine.connect() as conn:
        actions = set(conn.execute(text("SELECT action FROM audit_event")).scalars())
    assert actions == {"committed", "other thread"}


def test_a_second_writer_waits_for_the_turn_not_for_a_timeout(sqlite):
    started = threading.Event()
    with sqlite.engine.begin() as conn:
        conn.execute(insert(AUDIT).values(at=datetime.now(UTC), action="first"))
        waiter = threading.Thread(target=lambda: (started.set(), write(sqlite, "second")))
        waiter.start()
        started.wait(5)
        time.sleep(0.05)  # the second writer is now waiting for the turn
        assert waiter.is_alive()
    handed_over = time.perf_counter()
    waiter.join(5)
    assert not waiter.is_alive() and time.perf_counter() - handed_over < 0.5
