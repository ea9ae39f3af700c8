"""/healthz tells the truth (issue 14.5): 503 with the reason as soon as the database
does not take writes or its SQLite file vanishes, 200 again once it is back; a
SQLite file replaced under a running server is reopened, never written behind its
back. (CI runs as root, who may write a chmod'ed file: the tests delete, move and
replace the file, and open it read-only through the URL.)"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from bot.server import create_app
from storage.db import Database, sqlite_path
from storage.models import AuditEvent
from tests.harness import make_chat

SUFFIXES = ("", "-wal", "-shm")


@pytest.fixture
def sqlite_db(db: Database) -> Database:
    if not db.is_sqlite:
        pytest.skip("a file that vanishes or is replaced is SQLite's problem")
    return db


def move(src: Path, dst: Path) -> None:
    for suffix in SUFFIXES:
        if Path(f"{src}{suffix}").exists():
            shutil.move(f"{src}{suffix}", f"{dst}{suffix}")


def audit_rows(path: Path) -> int:
    other = Database(f"sqlite:///{path}")
    try:
        with other.session() as s:
            return s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    finally:
        other.dispose()


def write_audit(db: Database, note: str) -> None:
    from datetime import UTC, datetime

    with db.session() as s:
        s.add(AuditEvent(at=datetime.now(UTC), action=note))


async def test_health_is_503_while_the_file_is_gone_and_200_when_it_is_back(sqlite_db, clock):
    chat = make_chat(sqlite_db, clock)
    path = sqlite_path(sqlite_db.url)
    aside = path.with_name("aside.db")
    with TestClient(create_app(chat.runtime, run_workers=False)) as client:
        assert client.get("/healthz").status_code == 200
        before = audit_rows(path)
        move(path, aside)
        started = time.monotonic()
        health = client.get("/healthz")
        assert health.status_code == 503 and time.monotonic() - started < 5
        assert health.json()["status"] == "unavailable"
        assert "has vanished" in health.json()["database"]
        # A write meanwhile is refused with that reason; nothing lands in the lost file
        # and no empty database appears in its place.
        with pytest.raises(OperationalError, match="has vanished"):
            write_audit(sqlite_db, "written while the file was gone")
        assert not path.exists()
        move(aside, path)
        assert client.get("/healthz").status_code == 200
        assert audit_rows(path) == before
        write_audit(sqlite_db, "after it came back")
        assert audit_rows(path) == before + 1


async def test_a_replaced_file_is_reopened_and_written_not_the_old_one(sqlite_db, clock,
                                                                       caplog):
    make_chat(sqlite_db, clock)
    path = sqlite_path(sqlite_db.url)
    write_audit(sqlite_db, "before")
    with sqlite_db.engine.connect() as conn:  # one file, so the copy is complete
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    old = path.with_name("old.db")
    shutil.copy(path, old)
    with caplog.at_level(logging.WARNING, logger="crier.db"):
        # A restore from a backup: a new file (a new inode) at the same path.
        shutil.copy(path, path.with_name("restored.db"))
        path.with_name("restored.db").replace(path)
        write_audit(sqlite_db, "after the restore")
    assert "was replaced while Crier ran; reopened it" in caplog.text
    assert audit_rows(path) == audit_rows(old) + 1


def read_only(db: Database) -> Database:
    """The same database opened so that it refuses every write (root cannot either)."""
    if db.is_sqlite:
        return Database(f"sqlite:///file:{sqlite_path(db.url)}?mode=ro&uri=true")
    options = f"{db.url.query.get('options', '')} -cdefault_transaction_read_only=on"
    url = db.url.update_query_dict({"options": options.strip()})
    return Database(url.render_as_string(hide_password=False))


def test_health_is_503_when_the_database_is_read_only(db, clock):
    chat = make_chat(db, clock)
    chat.runtime.db = read_only(db)
    try:
        with TestClient(create_app(chat.runtime, run_workers=False)) as client:
            health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert "does not take writes" in health.json()["database"]
        assert "read" in health.json()["database"]  # readonly / read-only transaction
    finally:
        chat.runtime.db.dispose()
