"""The delivery engine under faults, against the fake Slack Web API over real HTTP:
429s with Retry-After, 5xx, a database that goes away, a worker killed with
SIGKILL, and two worker processes sharing one PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, insert, select, update

from announcements.clock import ManualClock, SystemClock
from announcements.compose import RENDERERS
from announcements.delivery import DeliveryEngine, EngineConfig
from announcements.delivery.outbox import Outbox
from announcements.delivery.throttle import DEFAULT_RETRY_AFTER
from announcements.ports import ChatPlatform, RateLimits
from bench.harness import (
    MARKER,
    ROOT,
    Observed,
    broadcast,
    outbox_counts,
    populate,
    user_id,
    worker_command,
)
from bot.settings import Settings
from bot.slack.platform import SlackPlatform, make_platform
from storage.db import Database
from storage.models import Delivery, WorkerHeartbeat
from tests.fakes.slack_api import FakeSlackAPI, dm


@pytest.fixture
def fake() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI(keep_bodies=False) as api:
        yield api


def slack(fake: FakeSlackAPI, limits: RateLimits | None = None) -> SlackPlatform:
    platform = make_platform(Settings(slack_bot_token=fake.token, slack_signing_secret="x",
                                      slack_api_url=fake.url))
    platform.limits = limits or RateLimits(0, 0)  # no pacing: only Retry-After holds it back
    return platform


def copies(fake: FakeSlackAPI, n: int) -> list[int]:
    """How many copies of the broadcast each of the ``n`` people holds."""
    return [sum(MARKER in m.text for m in fake.messages(user_id(i))) for i in range(n)]


async def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for a condition the engine brings about (never for a fixed time)."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def running(engine: DeliveryEngine) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


def delivered(db: Database, ann: int, n: int) -> Callable[[], bool]:
    return lambda: outbox_counts(db, ann).get("delivered", 0) == n


# -- Retry-After ------------------------------------------------------------------------


async def test_429s_and_5xx_everything_delivered_nothing_started_inside_a_window(db, fake):
    """20% 429 (Retry-After 0.1 s) and 5% 503. Four requests in flight at a time."""
    n = 60
    people = populate(db, n)
    ann, _ = broadcast(db, people)
    fake.chaos(p429=0.2, p5xx=0.05, retry_after=0.1)  # type: ignore[arg-type]
    watched = Observed(slack(fake))
    await watched.start()  # forwarded: the wrapped platform opens its HTTP session
    engine = DeliveryEngine(db, RENDERERS, {"slack": watched},
                            SystemClock(), EngineConfig(concurrency=4, backoff_base=0.05))
    async with running(engine):
        await until(delivered(db, ann, n))
    await watched.stop()
    assert copies(fake, n) == [1] * n
    assert fake.rate_limited >= 5 and watched.rate_limited == fake.rate_limited
    assert any(c.error == "service_unavailable" for c in fake.requests("chat.postMessage"))
    # Measured from Crier's side: nothing started while a Retry-After it had received ran.
    assert watched.started_inside == 0
    with db.session() as s:
        attempts = s.execute(select(func.max(Delivery.attempts)).where(
            Delivery.announcement_id == ann)).scalar_one()
    assert attempts <= 3  # 429s give their attempt back; only 5xx count


async def test_the_observed_platform_is_a_whole_chat_platform(fake):
    watched = Observed(slack(fake))
    assert isinstance(watched, ChatPlatform)
    await watched.start()
    try:
        channel = await watched.open_direct("U0WATCHED")
    finally:
        await watched.stop()
    assert channel == dm("U0WATCHED") and watched.requests == 1
    assert len(fake.requests("conversations.open")) == 1


async def test_one_at_a_time_the_fake_sees_no_request_inside_a_window(db, fake):
    """With one request in flight there is nothing in flight at a 429: the fake's own
    count of requests arriving inside a Retry-After window it gave must be zero."""
    n = 30
    people = populate(db, n)
    ann, _ = broadcast(db, people)
    fake.chaos(p429=0.2, retry_after=0.1)  # type: ignore[arg-type]
    platform = slack(fake)
    await platform.start()
    engine = DeliveryEngine(db, RENDERERS, {"slack": platform},
                            SystemClock(), EngineConfig(concurrency=1))
    async with running(engine):
        await until(delivered(db, ann, n))
    await platform.aclose()
    assert fake.rate_limited >= 2
    assert fake.early_requests == 0
    assert copies(fake, n) == [1] * n


@pytest.mark.parametrize(("header", "waited"), [(1, 1.0), (0, DEFAULT_RETRY_AFTER)],
                         ids=["retry-after-1", "no-retry-after"])
async def test_a_retry_after_is_waited_in_full(db, fake, header, waited):
    """A whole-second Retry-After, and a 429 naming none (the default pause)."""
    people = populate(db, 3)
    ann, _ = broadcast(db, people)
    fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=header)
    platform = slack(fake)
    await platform.start()
    engine = DeliveryEngine(db, RENDERERS, {"slack": platform},
                            SystemClock(), EngineConfig(concurrency=1))
    async with running(engine):
        await until(delivered(db, ann, 3))
    await platform.aclose()
    posts = fake.requests("chat.postMessage")
    limited = next(c for c in posts if c.error == "ratelimited")
    after = [c.at for c in fake.requests() if c.at > limited.at]
    assert after and min(after) - limited.at >= waited
    assert fake.early_requests == 0


# -- the database goes away -------------------------------------------------------------


def unreachable(db: Database):  # type: ignore[no-untyped-def]
    """An engine for the same database that cannot connect (a closed port, a missing dir)."""
    if db.is_sqlite:
        return create_engine("sqlite:////nonexistent-crier-dir/crier.db")
    return create_engine(db.url.set(host="127.0.0.1", port=1), connect_args={
        "connect_timeout": 1})


async def test_a_database_outage_is_waited_out_and_nothing_is_lost(db, fake):
    n = 400
    people = populate(db, n)
    ann, _ = broadcast(db, people)
    platform = slack(fake)
    await platform.start()
    real = db.engine
    config = EngineConfig(concurrency=4, batch_size=50, db_retry_base=0.05,
                          db_retry_cap=0.2, max_unrecorded=100)
    engine = DeliveryEngine(db, RENDERERS, {"slack": platform},
                            SystemClock(), config)
    async with running(engine):
        await until(lambda: len(fake.requests("chat.postMessage")) >= 60)
        db.engine = unreachable(db)  # every new claim, render and write fails from here
        await until(lambda: engine.db_errors >= 3)
        during = len(fake.requests("chat.postMessage"))
        await until(lambda: engine.db_errors >= 8)
        # While results cannot be written, sending stops (at most max_unrecorded wait).
        assert len(fake.requests("chat.postMessage")) - during <= config.max_unrecorded
        db.engine = real
        await until(delivered(db, ann, n))
    await platform.aclose()
    assert copies(fake, n) == [1] * n


# -- processes --------------------------------------------------------------------------


def spawn(cmd: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    return proc


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


@pytest.mark.slow
async def test_two_worker_processes_share_10000_recipients_each_delivered_once(db):
    if db.is_sqlite:
        pytest.skip("several worker processes share PostgreSQL only; SQLite runs one worker")
    n = 10_000
    people = populate(db, n)
    ann, _ = broadcast(db, people)
    async with FakeSlackAPI(keep_bodies=False) as fake:
        url = db.url.render_as_string(hide_password=False)
        procs = [spawn(worker_command(url, fake.url, owner=f"worker-{i}", until_sent=ann))
                 for i in (1, 2)]
        outputs = [await asyncio.to_thread(finish, p) for p in procs]
        assert copies(fake, n) == [1] * n
    counts = outbox_counts(db, ann)
    assert counts == {"delivered": n}
    with db.session() as s:
        owners = dict(s.execute(select(Delivery.lease_owner, func.count()).where(
            Delivery.announcement_id == ann, Delivery.purpose == "announcement")
            .group_by(Delivery.lease_owner)).tuples().all())
        once = s.execute(select(func.max(Delivery.attempts)).where(
            Delivery.announcement_id == ann)).scalar_one()
    # Both did a real share of the work, and no row was ever claimed twice.
    assert set(owners) == {"worker-1", "worker-2"} and min(owners.values()) > n // 10, outputs
    assert once == 1


async def test_a_worker_killed_mid_send_is_replaced_without_losing_anyone(db):
    """kill -9 in the middle of a send, then a restart: the new process reclaims the
    dead one's leases at once (SQLite: it runs alone; PostgreSQL: the dead one's
    heartbeat goes stale), not after the 120-second lease."""
    n = 1_500
    people = populate(db, n)
    ann, _ = broadcast(db, people)
    url = db.url.render_as_string(hide_password=False)
    async with FakeSlackAPI(keep_bodies=False) as fake:
        worker = spawn(worker_command(url, fake.url, owner="doomed"))
        await until(lambda: len(fake.requests("chat.postMessage")) >= n // 3)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        with db.session() as s:
            recorded = set(s.execute(select(Delivery.message_ref).where(
                Delivery.announcement_id == ann, Delivery.message_ref.is_not(None))).scalars())
            leased = s.execute(select(func.count()).select_from(Delivery).where(
                Delivery.announcement_id == ann, Delivery.status == "sending")).scalar_one()
        dead_sent = {f"{m.channel}:{m.ts}" for i in range(n) for m in fake.messages(user_id(i))
                     if MARKER in m.text}
        assert 0 < len(recorded) < n and leased > 0  # it died holding leases

        restarted = time.monotonic()
        replacement = spawn(worker_command(url, fake.url, owner="replacement", until_sent=ann))
        await asyncio.to_thread(finish, replacement)
        took = time.monotonic() - restarted
        held = copies(fake, n)
    assert outbox_counts(db, ann) == {"delivered": n}
    assert took < 15, f"every recipient served {took:.1f}s after the restart"
    assert min(held) == 1  # nobody left behind
    # Duplicates only among the dead worker's sends the outbox never heard of:
    # in flight or not yet written.
    unrecorded = len(dead_sent - recorded)
    duplicates = sum(c - 1 for c in held)
    assert duplicates <= unrecorded <= EngineConfig().concurrency + EngineConfig().max_unrecorded


async def test_a_heartbeat_the_database_cannot_write_stops_claiming(db, fake):
    """No heartbeat, no claims: others may take this engine's rows at any moment, so
    it must not send them. Once the heartbeat is written again, it delivers."""
    people = populate(db, 20)
    ann, _ = broadcast(db, people)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE worker_heartbeat RENAME TO worker_heartbeat_away")
    config = EngineConfig(heartbeat_interval=0.1, idle_poll=0.05)
    engine = DeliveryEngine(db, RENDERERS, {"slack": slack(fake)}, SystemClock(), config)
    async with running(engine):
        await asyncio.sleep(1.0)
        assert fake.requests("chat.postMessage") == []
        assert outbox_counts(db, ann) == {"pending": 20}
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE worker_heartbeat_away RENAME TO worker_heartbeat")
        await until(delivered(db, ann, 20))
    assert copies(fake, 20) == [1] * 20


def test_a_claim_takes_over_only_the_rows_of_engines_that_are_gone(db):
    """Leases of an engine whose heartbeat is stale are taken at once; a live engine's
    are not, nor those of an engine that started (and leased) after the claim looked
    at who is alive."""
    people = populate(db, 30)
    ann, _ = broadcast(db, people)
    now = datetime.now(UTC)
    stale_before = now - timedelta(seconds=8)
    with db.engine.begin() as conn:
        conn.execute(insert(WorkerHeartbeat), [
            {"owner": "gone", "beat_at": now - timedelta(seconds=60), "started_at": now},
            {"owner": "alive", "beat_at": now, "started_at": now}])
    ids = sorted(r.id for r in Outbox(db, "x").claim("slack", 30, now, timedelta(minutes=2)))
    leases = {"gone": (ids[:10], now - timedelta(seconds=30)),
              "alive": (ids[10:20], now - timedelta(seconds=30)),
              "newcomer": (ids[20:], now + timedelta(milliseconds=5))}
    with db.engine.begin() as conn:
        for owner, (rows, at) in leases.items():
            conn.execute(update(Delivery.__table__).where(  # type: ignore[attr-defined]
                Delivery.__table__.c.id.in_(rows))  # type: ignore[attr-defined]
                .values(lease_owner=owner, updated_at=at))
    taken = Outbox(db, "me").claim("slack", 30, now, timedelta(minutes=2), stale_before)
    assert sorted(r.id for r in taken) == ids[:10]
    assert outbox_counts(db, ann) == {"sending": 30}


async def test_a_successor_takes_over_more_than_one_batch_of_a_dead_engines_rows(db, fake):
    """A dead engine held more rows than one claim takes: the successor keeps looking
    for lost rows while it finds them, instead of once a second, and sends them all
    even on a clock that stands still."""
    people = populate(db, 450)
    ann, _ = broadcast(db, people)
    now = datetime.now(UTC)
    assert len(Outbox(db, "dead").claim("slack", 450, now, timedelta(minutes=2))) == 450
    later = ManualClock(now + timedelta(minutes=3))  # the dead engine's leases ran out
    engine = DeliveryEngine(db, RENDERERS, {"slack": slack(fake)}, later,
                            EngineConfig(batch_size=200), owner="successor")
    await engine.drain()
    assert outbox_counts(db, ann) == {"delivered": 450}
    assert copies(fake, 450) == [1] * 450
