"""Shared fixtures.

- ``db``: a migrated database. SQLite in a temporary file by default; with
  ``CRIER_TEST_POSTGRES_URL`` set, a fresh PostgreSQL schema per test. Under
  CI (``CI=true``) an unreachable PostgreSQL fails the run instead of skipping.
- Every test runs with outbound network limited to loopback: a test that
  would reach the real internet fails loudly.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from announcements.clock import ManualClock
from storage.db import Database

pytest_plugins = ["tests.platform_fixtures"]

POSTGRES_URL = os.environ.get("CRIER_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# -- no internet --------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class InternetAccessInTest(RuntimeError):
    pass


def _is_local(host: object) -> bool:
    if not isinstance(host, str):
        return True
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guard(address: object) -> None:
    if isinstance(address, tuple) and address and not _is_local(address[0]):
        raise InternetAccessInTest(f"a test tried to reach {address[0]!r}; use a local fake")


def _connect(self: socket.socket, address: object) -> None:
    _guard(address)
    return _real_connect(self, address)  # type: ignore[arg-type]


def _connect_ex(self: socket.socket, address: object) -> int:
    _guard(address)
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


def _getaddrinfo(host: object, *args: object, **kw: object):  # type: ignore[no-untyped-def]
    if not _is_local(host if not isinstance(host, bytes) else host.decode()):
        raise InternetAccessInTest(f"a test tried to resolve {host!r}; use a local fake")
    return _real_getaddrinfo(host, *args, **kw)  # type: ignore[arg-type]


socket.socket.connect = _connect  # type: ignore[method-assign]
socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _getaddrinfo  # type: ignore[assignment]


# -- database -----------------------------------------------------------------------


def _postgres_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def db_url(tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path}/crier.db"
        return
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    conninfo = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable in CI: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    try:
        yield _postgres_schema_url(POSTGRES_URL, schema)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def clock() -> ManualClock:
    # Friday 15:00 UTC: inside working hours in Berlin, London and New York (quiet
    # hours hold nothing), and "mon 09:00" / "tomorrow" are unambiguous.
    return ManualClock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
