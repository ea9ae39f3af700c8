"""Engine and sessions, URL handling, schema migration, and the database executor.

``Database`` is the one handle the rest of the code passes around. SQLite runs
in WAL mode with a busy timeout so the HTTP server and the delivery worker can
share the file; PostgreSQL URLs use psycopg 3. ``Database.executor`` runs database
work off the event loop (``storage.executor``); it stops with ``dispose()``.

A SQLite file deleted or replaced under a running process is noticed when a
connection is next taken: a vanished file refuses every statement with a clear
error (SQLite would otherwise keep writing into the deleted file, lost at the next
start, or create an empty one); a replaced file is reopened.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session, create_engine

from storage.executor import DbExecutor, Priority, current_priority

DEFAULT_URL = "sqlite:///./crier.db"
MIGRATIONS = Path(__file__).parent / "migrations"
#: Threads of the database executor: SQLite has one writer anyway; PostgreSQL's
#: stay within the connection pool (10 + 10 overflow).
SQLITE_THREADS = 4
POSTGRES_THREADS = 8
#: How long the health check's write may wait for SQLite's lock, in milliseconds.
HEALTH_BUSY_MS = 3000
log = logging.getLogger("crier.db")


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or opened; the message is one line for a person."""


def normalize_url(url: str) -> URL:
    """Accept the URLs people write (``postgresql://``, ``postgres://``) and pick psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(
            f"CRIER_DATABASE_URL {url!r} is not a database URL; "
            "use e.g. sqlite:///./crier.db or postgresql://user@host:5432/dbname"
        ) from exc
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def describe(url: URL) -> str:
    """The URL with any password hidden, for messages and logs."""
    return url.render_as_string(hide_password=True)


class Database:
    def __init__(self, url: str = DEFAULT_URL, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if self.url.database in (None, "", ":memory:"):
                raise DatabaseUnavailable(
                    "an in-memory SQLite database cannot be shared by the server and its "
                    "workers; use a file, e.g. sqlite:///./crier.db"
                )
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 10
            kwargs["connect_args"] = {"connect_timeout": 5}
        self.engine: Engine = create_engine(self.url, **kwargs)
        self.executor = DbExecutor(SQLITE_THREADS if self.is_sqlite else POSTGRES_THREADS)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            serialize_writers(self.engine)
            FileWatch(sqlite_path(self.url)).attach(self.engine)

    @classmethod
    def for_tests(cls, url: str) -> Database:  # pragma: no cover - convenience
        return cls(url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any exception."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def check(self) -> None:
        """Connect once; raise ``DatabaseUnavailable`` with one readable line if we cannot."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise DatabaseUnavailable(
                f"cannot reach the database at {describe(self.url)}: {_reason(exc)}. "
                "Check CRIER_DATABASE_URL and that the server is running."
            ) from None

    def check_writable(self) -> None:
        """Rewrite the health row; raise ``DatabaseUnavailable`` (one line) if the
        database does not take the write (read-only, vanished, unreachable, locked)."""
        try:
            with self.engine.begin() as conn:
                if self.is_sqlite:
                    conn.execute(text(f"PRAGMA busy_timeout={HEALTH_BUSY_MS}"))
                try:
                    now = datetime.now(UTC).replace(tzinfo=None)
                    done = conn.execute(text("UPDATE health_check SET checked_at = :now "
                                             "WHERE id = 1"), {"now": now})
                    if not done.rowcount:
                        conn.execute(text("INSERT INTO health_check (id, checked_at) "
                                          "VALUES (1, :now)"), {"now": now})
                finally:
                    if self.is_sqlite:
                        conn.execute(text("PRAGMA busy_timeout=30000"))
        except (OperationalError, DBAPIError) as exc:
            raise DatabaseUnavailable(
                f"the database at {describe(self.url)} does not take writes: {_reason(exc)}"
            ) from None

    def migrate(self) -> str:
        """Create or upgrade the schema to the newest migration; return the revision."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext

        self.check()
        if self.is_sqlite and self.url.database:
            Path(self.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() or ""

    def is_migrated(self) -> bool:
        self.check()
        return inspect(self.engine).has_table("announcement")

    def dispose(self) -> None:
        """Stop the executor (after the calls already queued) and close the connections."""
        self.executor.shutdown()
        self.engine.dispose()


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")


class _Turns:
    """One writer at a time; re-entrant; waiting requests go before background work."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._depth = 0
        self._waiting = 0  # requests (not background work) waiting for a turn

    def take(self) -> None:
        me = threading.get_ident()
        background = current_priority() == Priority.BACKGROUND
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            self._waiting += not background
            while self._owner is not None or (background and self._waiting):
                self._cond.wait()
            self._waiting -= not background
            self._owner, self._depth = me, 1

    def give(self) -> None:
        with self._cond:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()


def serialize_writers(engine: Engine) -> None:
    """SQLite has one writer at a time. Threads of this process take turns, handed over
    the moment a write transaction ends, instead of SQLite's busy handler, which retries
    after sleeps of up to 100 ms; and a person's click goes before the delivery engine's
    bulk writes. Other processes (the CLI) still wait through ``busy_timeout``."""
    turns = _Turns()

    def before(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not conn.info.get("crier_writes") and statement.lstrip()[:6].upper() in _WRITES:
            turns.take()
            conn.info["crier_writes"] = True

    def done(info: dict[str, Any]) -> None:
        if info.pop("crier_writes", False):
            turns.give()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", lambda conn: done(conn.info))
    event.listen(engine, "rollback", lambda conn: done(conn.info))
    # A connection given back without commit or rollback must not keep the turn.
    event.listen(engine.pool, "checkin", lambda _dbapi, record: done(record.info))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def sqlite_path(url: URL) -> Path:
    """The file a SQLite URL opens (``file:`` URIs included), made absolute."""
    name = url.database or ""
    if name.startswith("file:"):
        name = name.removeprefix("file:").split("?", 1)[0]
    return Path(name).expanduser().absolute()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class FileWatch:
    """Notices a SQLite file deleted or replaced under this process (module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened = False  # once opened, a missing file is an error, not a new database
        self._warned: tuple[int, int] | None = None

    def vanished(self) -> sqlite3.OperationalError:
        return sqlite3.OperationalError(
            f"the database file {self.path} has vanished (deleted or moved) while Crier "
            "ran; nothing is written until it is back (restore it from a backup)")

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "do_connect", self._before_connect)
        event.listen(engine, "connect", self._connected)
        event.listen(engine, "checkout", self._checkout)

    def _before_connect(self, *_: Any) -> None:
        if self.opened and _identity(self.path) is None:
            raise self.vanished()

    def _connected(self, _dbapi: Any, record: Any) -> None:
        record.info["crier_file"] = _identity(self.path)
        self.opened = True

    def _checkout(self, _dbapi: Any, record: Any, _proxy: Any) -> None:
        now = _identity(self.path)
        if now is None:
            raise self.vanished()
        if record.info.get("crier_file") != now:
            if self._warned != now:
                self._warned = now
                log.warning("the database file %s was replaced while Crier ran; reopened it",
                            self.path)
            raise DisconnectionError("the database file was replaced")


__all__ = ["Database", "DatabaseUnavailable", "DbExecutor", "DEFAULT_URL", "NullPool",
           "Priority", "describe"]
