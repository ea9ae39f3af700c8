"""A load harness for the delivery engine, shared by ``bench/bench_delivery.py`` and the
process-level tests.

- ``populate`` writes a directory of ``n`` people with Slack accounts, fast.
- ``broadcast`` puts one announcement to all of them in the outbox, through the
  real fan-out (``enqueue``).
- ``Observed`` wraps a platform and watches the engine from outside: requests
  started while a ``Retry-After`` it had received was still running.
- ``FakeSlackProcess`` runs the tests' fake Slack Web API in its own process, so
  it does not share a CPU (or the GIL) with the engine it measures.
- ``worker_command`` starts a delivery worker process (``python -m bench.worker``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, insert, select
from sqlmodel import col

from announcements.delivery.fanout import Channels, enqueue
from announcements.ports import Attachment, RateLimited, RateLimits
from announcements.types import DeliveryStatus, OutboundMessage, Purpose, Status
from storage.db import Database
from storage.models import Announcement, Delivery, Identity, Person

ROOT = Path(__file__).resolve().parents[1]
SLACK_ONLY = Channels(enabled=("slack",), order=("slack",), by_email=frozenset())
MARKER = "Bench broadcast"
T = TypeVar("T")


def user_id(i: int) -> str:
    return f"U{i:08d}"


def populate(db: Database, n: int, chunk: int = 10_000) -> list[int]:
    """``n`` people with a Slack account each; returns their ids (the first is the author)."""
    now = datetime.now(UTC)
    with db.session() as s:
        first = (s.execute(select(func.max(Person.id))).scalar() or 0) + 1
        for start in range(0, n, chunk):
            rows = range(start, min(n, start + chunk))
            s.execute(insert(Person), [
                {"id": first + i, "email": f"p{i}@bench.example", "name": f"Person {i}",
                 "department": f"Dept {i % 10}", "timezone": "UTC", "active": True,
                 "created_at": now, "updated_at": now} for i in rows])
            s.execute(insert(Identity), [
                {"person_id": first + i, "platform": "slack", "platform_user_id": user_id(i),
                 "linked_at": now} for i in rows])
    return list(range(first, first + n))


def broadcast(db: Database, people: list[int], *, ack: bool = True,
              channels: Channels = SLACK_ONLY) -> tuple[int, float]:
    """One approved announcement to ``people``, in the outbox; (its id, seconds to fan out)."""
    now = datetime.now(UTC)
    with db.session() as s:
        ann = Announcement(kind="message", author_id=people[0], text=f"{MARKER}: please read",
                           audience="all", audience_size=len(people), ack=ack,
                           status=Status.SENDING.value, approved_by_id=people[-1],
                           created_at=now, updated_at=now, sent_at=now)
        s.add(ann)
        s.flush()
        assert ann.id is not None
        started = time.perf_counter()
        enqueue(s, channels, ann.id, people, Purpose.ANNOUNCEMENT, now)
        took = time.perf_counter() - started
        return ann.id, took


def outbox_counts(db: Database, ann_id: int) -> dict[str, int]:
    with db.session() as s:
        return dict(s.execute(
            select(col(Delivery.status), func.count()).where(
                col(Delivery.announcement_id) == ann_id,
                col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value)
            .group_by(col(Delivery.status))).tuples().all())


def open_rows(db: Database) -> int:
    with db.session() as s:
        return s.execute(select(func.count()).select_from(Delivery).where(
            col(Delivery.status).in_([DeliveryStatus.PENDING.value,
                                 DeliveryStatus.SENDING.value]))).scalar_one()


@dataclass
class Observed:
    """A ``ChatPlatform`` wrapper that watches when the engine starts requests.

    A request is *inside a Retry-After window* when it is started after a 429
    reached Crier and before that 429's Retry-After has passed. Requests already
    started when the 429 arrived were in flight; they are counted apart.
    """

    inner: Any
    requests: int = 0
    started_inside: int = 0
    rate_limited: int = 0
    in_flight: int = 0
    in_flight_at_429: int = 0
    windows: list[tuple[float, float]] = field(default_factory=list)
    name: str = field(init=False)
    identifies_by_email: bool = field(init=False)
    limits: RateLimits = field(init=False)
    _open_until: float = 0.0

    def __post_init__(self) -> None:
        self.name = self.inner.name
        self.identifies_by_email = self.inner.identifies_by_email
        self.limits = self.inner.limits

    async def _watch(self, call: Awaitable[T]) -> T:
        if time.monotonic() < self._open_until:
            self.started_inside += 1
        self.requests += 1
        self.in_flight += 1
        try:
            return await call
        except RateLimited as exc:
            now = time.monotonic()
            self.rate_limited += 1
            self.in_flight_at_429 += self.in_flight - 1
            self._open_until = max(self._open_until, now + exc.retry_after)
            self.windows.append((now, now + exc.retry_after))
            raise
        finally:
            self.in_flight -= 1

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def open_direct(self, account: str) -> str:
        return await self._watch(self.inner.open_direct(account))

    async def send(self, address: str, message: OutboundMessage) -> str:
        return await self._watch(self.inner.send(address, message))

    async def update(self, address: str, message_ref: str, message: OutboundMessage) -> None:
        await self._watch(self.inner.update(address, message_ref, message))

    async def delete(self, address: str, message_ref: str) -> None:
        await self._watch(self.inner.delete(address, message_ref))

    async def post_report(self, channel: str, message: OutboundMessage,
                          attachment: Attachment | None) -> str:
        return await self._watch(self.inner.post_report(channel, message, attachment))

    def paused_seconds(self, start: float, end: float) -> float:
        """How long, between ``start`` and ``end``, some Retry-After was running."""
        total, reach = 0.0, start
        for a, b in sorted(self.windows):
            a, b = max(a, reach), min(b, end)
            if b > a:
                total += b - a
                reach = b
        return total


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU a live process has used (``/proc``; 0 where it cannot be read);
    ``children``: and that of its children which have ended."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = sum(int(t) for t in fields[11:15 if children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU used so far by every PostgreSQL process on this machine (server, backends,
    WAL writer, autovacuum), those that have ended included (the server reaps them):
    a benchmark reads it before and after."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if not f.read().startswith("postgres"):
                        continue
            except OSError:
                continue
            total += cpu_seconds(int(entry), children=True)
    return total


# -- the fake Slack Web API in its own process ---------------------------------------


def fake_stats(fake: Any, marker: str = MARKER) -> dict[str, Any]:
    """What the fake saw: requests, answers, and copies of the broadcast per person."""
    posts = [c for c in list(fake.calls) if c.method == "chat.postMessage"]
    copies = [sum(1 for m in msgs if marker in m.text)
              for msgs in list(fake.conversations.values())]
    ok = [c.at for c in posts if c.error is None]
    last_first = max(fake.first_tries.values(), default=0.0)
    return {
        "posts": len(posts),
        "ok": len(ok),
        "rate_limited": sum(1 for c in posts if c.error == "ratelimited"),
        "server_errors": sum(1 for c in posts if c.error == "service_unavailable"),
        "early_requests": fake.early_requests,
        "people": sum(1 for n in copies if n),
        "duplicates": sum(n - 1 for n in copies if n > 1),
        "first_ok": min(ok, default=0.0),
        "last_ok": max(ok, default=0.0),
        # The last first try: after it only retries are left (the tail of a send).
        "last_first_try": last_first,
        "ok_by_last_first_try": sum(1 for t in ok if t <= last_first),
    }


def serve_fake(config: dict[str, Any]) -> None:
    """The child's side: one JSON request per stdin line, one JSON answer per stdout line."""
    from bench.lean_slack import LeanSlack
    from tests.fakes.slack_api import FakeSlackAPI

    lean = bool(config.pop("lean", False))
    fake: Any = LeanSlack().start() if lean else FakeSlackAPI(keep_bodies=False).start()
    if not lean:
        _configure(fake, config)
    print(json.dumps({"port": fake.port}), flush=True)
    for line in sys.stdin:
        op, arg = json.loads(line)
        if op == "stats":
            answer: Any = fake.stats() if lean else fake_stats(fake)
        elif op == "configure" and not lean:
            _configure(fake, arg)
            answer = True
        elif op == "reset":
            fake.reset()
            if not lean:
                fake.conversations.clear()
            answer = True
        else:
            break
        print(json.dumps(answer), flush=True)
    fake.stop()


def _configure(fake: Any, config: dict[str, Any]) -> None:
    if "limit" in config:
        per_second, burst = config["limit"] or (None, 1)
        fake.set_limit(per_second, per_channel=None, burst=burst)
    if "chaos" in config:
        fake.chaos(*config["chaos"])


class FakeSlackProcess:
    """``FakeSlackAPI`` in a child process; ``stats()`` asks it what it saw.
    ``lean=True``: ``bench.lean_slack.LeanSlack`` instead (no limit, no chaos)."""

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def __enter__(self) -> FakeSlackProcess:
        code = ("import json, sys; sys.path.insert(0, sys.argv[1]); "
                "from bench.harness import serve_fake; serve_fake(json.loads(sys.argv[2]))")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", code, str(ROOT), json.dumps(self.config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.port = int(self._read()["port"])
        return self

    def _read(self) -> Any:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake Slack process ended")
        return json.loads(line)

    def _ask(self, op: str, arg: Any = None) -> Any:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(json.dumps([op, arg]) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def stats(self) -> dict[str, Any]:
        return dict(self._ask("stats"))

    def cpu_seconds(self) -> float:
        assert self._proc is not None
        return cpu_seconds(self._proc.pid)

    def configure(self, **config: Any) -> None:
        self._ask("configure", config)

    def reset(self) -> None:
        self._ask("reset")

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        with contextlib.suppress(OSError):
            self._proc.stdin.write(json.dumps(["stop", None]) + "\n")
            self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def worker_command(db_url: str, slack_url: str, *, owner: str, concurrency: int = 32,
                   lease: float = 120.0, rate: float = 0.0, until_sent: int = 0,
                   extra: tuple[str, ...] = ()) -> list[str]:
    """The command line of one delivery worker process (see ``bench/worker.py``)."""
    cmd = [sys.executable, "-m", "bench.worker", "--db", db_url, "--slack-url", slack_url,
           "--owner", owner, "--concurrency", str(concurrency), "--lease", str(lease),
           "--rate", str(rate)]
    return cmd + (["--until-sent", str(until_sent)] if until_sent else []) + list(extra)
