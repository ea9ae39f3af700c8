"""Several `crier serve` processes on one PostgreSQL database: exactly one
schedules, every due job fires exactly once, and another takes over when the
leader dies. (SQLite runs one process by design, so these need PostgreSQL.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from announcements.clock import ManualClock
from storage.models import Announcement, JobRun
from tests.harness import make_chat

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_only(db):
    if db.is_sqlite:
        pytest.skip("several processes share PostgreSQL only; SQLite runs one process")
    return db


def spawn(url: str, seconds: float, markers) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return subprocess.Popen(
        [sys.executable, "-m", "tests.scheduler_worker", url, str(seconds), str(markers)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


async def reminders(db, count: int) -> tuple[list[int], object]:
    chat = make_chat(db, ManualClock(datetime.now(UTC)))
    ids = [await chat.approved(f"/remind to:Sales every:1h Reminder {i}") for i in range(count)]
    chat.runtime.scheduler.leadership.release()  # the test itself must not lead
    return ids, chat.runtime.scheduler.scheduler


def _leadership(output: str) -> tuple[float, float]:
    """(when the lock was taken, when it was released) from a worker's output."""
    times = {line.split()[0]: float(line.split()[2]) for line in output.splitlines()
             if line.startswith(("LEADER", "RELEASED"))}
    return times["LEADER"], times.get("RELEASED", float("inf"))


def due_in(scheduler, ann_id: int, seconds: float) -> None:
    job = scheduler.store.lookup_job(f"reminder:{ann_id}")
    job._modify(next_run_time=datetime.now(UTC) + timedelta(seconds=seconds))
    scheduler.store.update_job(job)


def occurrences(db, ann_id: int) -> int:
    with db.session() as s:
        return s.execute(select(func.count()).select_from(Announcement)
                         .where(Announcement.parent_id == ann_id)).scalar_one()


def runs(db, ann_id: int) -> int:
    with db.session() as s:
        return s.execute(select(func.count()).select_from(JobRun)
                         .where(JobRun.job_id == f"reminder:{ann_id}")).scalar_one()


async def test_two_processes_fire_each_due_job_exactly_once(pg_only, db_url, tmp_path):
    db = pg_only
    ids, scheduler = await reminders(db, 4)
    for i, ann in enumerate(ids):
        due_in(scheduler, ann, 0.5 + 0.5 * i)
    procs = [spawn(db_url, 5, tmp_path), spawn(db_url, 5, tmp_path)]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    # Never two leaders at once (one may take over when the other stops first).
    spans = sorted(_leadership(o) for o in outputs if "LEADER" in o)
    assert spans, outputs
    # RELEASED is printed just after the real release, so a successor's LEADER line may
    # come a few milliseconds "before" it; a real overlap would last seconds.
    for (_, released), (taken, _) in zip(spans, spans[1:], strict=False):
        assert taken >= released - 0.1, outputs
    for ann in ids:
        assert occurrences(db, ann) == 1
        assert runs(db, ann) == 1


async def test_another_process_takes_over_when_the_leader_dies(pg_only, db_url, tmp_path):
    db = pg_only
    (ann,), scheduler = await reminders(db, 1)
    procs = {p.pid: p for p in (spawn(db_url, 30, tmp_path), spawn(db_url, 30, tmp_path))}
    try:
        deadline = time.monotonic() + 15
        while not list(tmp_path.glob("leader-*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        markers = list(tmp_path.glob("leader-*"))
        assert len(markers) == 1, "exactly one process should lead"
        leader = procs[int(markers[0].name.split("-")[1])]
        leader.send_signal(signal.SIGKILL)  # its database session dies with it
        leader.wait(timeout=10)
        killed_at = time.monotonic()
        due_in(scheduler, ann, 0.2)
        while occurrences(db, ann) == 0 and time.monotonic() - killed_at < 15:
            time.sleep(0.2)
        assert occurrences(db, ann) == 1, "the surviving process did not take over"
        assert time.monotonic() - killed_at < 10
        assert len(list(tmp_path.glob("leader-*"))) == 2  # the survivor now leads
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
