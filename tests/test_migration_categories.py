"""Migration 0004 on a database written before categories: opt-outs and old
announcements are carried over as the README says."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from storage.db import MIGRATIONS, Database


def test_old_opt_outs_and_announcements_get_categories(db_url):
    database = Database(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    now = "2026-11-01 09:00:00"
    with database.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO person (id, email, name, department, timezone, active, created_at, "
            f"updated_at) VALUES (1, 'a@example.com', 'A', 'Sales', 'UTC', true, '{now}', "
            f"'{now}')"))
        for i, kind in ((1, "poll"), (2, "message"), (3, "reminder")):
            conn.execute(text(
                "INSERT INTO announcement (id, kind, author_id, text, audience, audience_size, "
                "ack, urgent, multi, anonymous, local_time, nudges_sent, status, created_at, "
                f"updated_at) VALUES ({i}, '{kind}', 1, 'x', 'all', 1, false, false, false, "
                f"false, false, 0, 'sent', '{now}', '{now}')"))
        for i, category in ((1, "polls"), (2, "reminders")):
            conn.execute(text(
                "INSERT INTO opt_out (id, person_id, category, created_at) "
                f"VALUES ({i}, 1, '{category}', '{now}')"))
    database.migrate()
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT category FROM opt_out")).scalars().all() == ["survey"]
        assert conn.execute(text("SELECT category, opted_out FROM announcement ORDER BY id")
                            ).tuples().all() == [("survey", 0), ("general", 0), ("general", 0)]
    database.dispose()
