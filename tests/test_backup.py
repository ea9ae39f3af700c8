"""`crier backup FILE`: a consistent copy while a writer is busy; PostgreSQL gets pg_dump."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from storage.db import Database

runner = CliRunner()


def test_a_backup_taken_while_a_writer_is_active_is_consistent_and_opens(tmp_path: Path):
    live = tmp_path / "crier.db"
    url = f"sqlite:///{live}"
    Database(url).migrate()
    setup = sqlite3.connect(live)
    setup.execute("CREATE TABLE pairs (n INTEGER)")
    setup.commit()
    setup.close()
    stop = threading.Event()
    written = [0]

    def writer() -> None:  # each transaction adds two rows: a torn copy has an odd count
        conn = sqlite3.connect(live, timeout=30)
        while not stop.is_set():
            with conn:
                conn.execute("INSERT INTO pairs VALUES (1)")
                conn.execute("INSERT INTO pairs VALUES (2)")
            written[0] += 2
        conn.close()

    probe = sqlite3.connect(live)
    assert probe.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # as Crier runs it
    probe.close()
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written[0] < 200:
            stop.wait(0.01)
        copies = []
        for i in range(3):
            copy = tmp_path / "backups" / f"crier-{i}.db"
            copy.parent.mkdir(exist_ok=True)
            result = runner.invoke(app, ["backup", str(copy)], env={"CRIER_DATABASE_URL": url})
            assert result.exit_code == 0, result.output
            assert f"to {copy}" in result.output and "integrity check" in result.output
            copies.append(copy)
    finally:
        stop.set()
        thread.join()
    counts = []
    for copy in copies:
        assert not Path(f"{copy}-wal").exists()  # one self-contained file
        conn = sqlite3.connect(copy)
        counts.append(conn.execute("SELECT count(*) FROM pairs").fetchone()[0])
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
        conn.close()
    assert all(n >= 200 and n % 2 == 0 for n in counts), counts
    assert counts == sorted(counts)
    assert not list((tmp_path / "backups").glob("*.partial"))


def test_backup_errors_are_one_clear_answer(tmp_path: Path):
    missing = runner.invoke(app, ["backup", str(tmp_path / "b.db")],
                            env={"CRIER_DATABASE_URL": f"sqlite:///{tmp_path}/none.db"})
    assert missing.exit_code == 1 and "there is no SQLite database at" in missing.output
    Database(f"sqlite:///{tmp_path}/c.db").migrate()
    no_folder = runner.invoke(app, ["backup", str(tmp_path / "nope" / "b.db")],
                              env={"CRIER_DATABASE_URL": f"sqlite:///{tmp_path}/c.db"})
    assert no_folder.exit_code == 2 and "does not exist" in no_folder.output
    assert "Traceback" not in missing.output + no_folder.output


def test_postgresql_is_backed_up_with_pg_dump_and_the_password_stays_out():
    result = runner.invoke(app, ["backup", "crier.dump"], env={
        "CRIER_DATABASE_URL": "postgresql://crier:hunter2-pw@db.example.com:5432/crier"})
    assert result.exit_code == 2
    assert ("pg_dump --format=custom --file crier.dump "
            "postgresql://crier@db.example.com:5432/crier") in result.output
    assert "hunter2" not in result.output
