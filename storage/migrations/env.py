"""Alembic environment: runs on the connection handed over by ``Database.migrate``
or, from the alembic command line, on ``CRIER_DATABASE_URL``."""

from __future__ import annotations

import os

from alembic import context
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables)
from storage.db import DEFAULT_URL, Database

config = context.config
target_metadata = SQLModel.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        db = Database(os.environ.get("CRIER_DATABASE_URL", DEFAULT_URL))
        with db.engine.begin() as conn:
            _run(conn)
        return
    _run(connection)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
