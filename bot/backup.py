"""``crier backup FILE``: a consistent copy of the database while Crier runs.

Rule: a SQLite backup goes through SQLite's online backup API in one step, so the
copy is one consistent snapshot even while the server writes (WAL included); it is
written beside FILE and renamed into place only once it passed an integrity check,
so FILE is never half-written. PostgreSQL is backed up with ``pg_dump``.
"""

from __future__ import annotations

import contextlib
import shlex
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from announcements.errors import CrierError
from storage.db import DatabaseUnavailable, describe, normalize_url


@dataclass(frozen=True)
class BackupResult:
    source: str
    target: Path
    pages: int
    size: int

    def summary(self) -> str:
        return (f"Backed up {self.source} to {self.target} ({self.pages} pages, "
                f"{self.size / 1_048_576:.1f} MB); the copy passed SQLite's integrity check.")


def backup(database_url: str, target: Path) -> BackupResult:
    """Copy the SQLite database at ``database_url`` to ``target``; explain pg_dump otherwise."""
    url = normalize_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise CrierError(f"{describe(url)} is PostgreSQL: back it up with pg_dump",
                         f"Run: {pg_dump_line(url, target)}  (it is consistent while Crier "
                         "runs; restore with pg_restore --clean --dbname …)")
    source = Path(url.database or "").expanduser()
    if not source.is_file():
        raise DatabaseUnavailable(f"there is no SQLite database at {source}; check "
                                  "CRIER_DATABASE_URL and the working directory")
    target = target.expanduser()
    if not target.parent.is_dir():
        raise CrierError(f"the folder {target.parent} does not exist",
                         "Create it first, or give a FILE in an existing folder.")
    if target.exists() and target.resolve() == source.resolve():
        raise CrierError(f"{target} is the database itself", "Give another FILE.")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        pages = _copy(source, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(str(source), target, pages, target.stat().st_size)


def _copy(source: Path, target: Path) -> int:
    """One-step online backup (a single read transaction: a consistent snapshot); the
    copy is turned into a self-contained file (no -wal beside it) and checked."""
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=DELETE")
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(f"cannot back up {source}: {exc}") from None
    finally:
        with contextlib.suppress(sqlite3.Error):
            src.close()
    if check != "ok":
        raise DatabaseUnavailable(f"the copy of {source} failed SQLite's integrity check "
                                  f"({check}); the database itself may be damaged")
    return pages


def pg_dump_line(url: URL, target: Path) -> str:
    """The ``pg_dump`` command for ``url`` (password left to ``PGPASSWORD``/``~/.pgpass``)."""
    plain = URL.create("postgresql", username=url.username, host=url.host, port=url.port,
                       database=url.database, query=url.query)
    conn = plain.render_as_string(hide_password=False)
    return f"pg_dump --format=custom --file {shlex.quote(str(target))} {shlex.quote(conn)}"
