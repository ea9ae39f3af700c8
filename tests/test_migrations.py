"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401


def test_models_and_migrations_agree(db):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = [d for d in compare_metadata(context, SQLModel.metadata)
                if not (isinstance(d, tuple) and d[0] == "remove_table"
                        and d[1].name.startswith("crier_scheduled_jobs"))]
    assert diff == []


def test_migrate_twice_is_harmless(db):
    first = db.migrate()
    assert db.migrate() == first
