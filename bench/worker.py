"""One delivery worker process: the delivery part of ``crier serve``, sending to Slack.

    python -m bench.worker --db URL --slack-url URL [--owner NAME] [--concurrency 32]
        [--lease 120] [--rate 0] [--burst 1] [--ceiling 0] [--until-sent ANN | --until-empty]
        [--observe] [--ack-probe ANN]

Prints ``ready`` once the engine runs, then works until SIGTERM/SIGINT (or until
announcement ANN has nothing left to send, or no row at all is open), and prints
its figures as one JSON line: counters, start/end (``time.monotonic``), peak RSS, CPU.
``--observe`` watches Retry-After from outside the engine (``bench.harness.Observed``);
``--ack-probe ANN`` clicks "Got it" up to 50 times a second for people already served
and reports how long each click took, as a person would wait for it. The harness's own
database reads (is it done? which message does the person click in?) run on the
database executor at background priority, as Crier's background work does.
``--switch-interval S`` sets Python's GIL switch interval for the whole worker (off by
default; Crier itself never changes it), for comparisons with the old set-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import signal
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import or_, select  # noqa: E402
from sqlmodel import col  # noqa: E402

from announcements.clock import SystemClock  # noqa: E402
from announcements.compose import RENDERERS  # noqa: E402
from announcements.delivery import DeliveryEngine, EngineConfig  # noqa: E402
from announcements.delivery.outbox import ANNOUNCEMENT, OPEN, open_row  # noqa: E402
from announcements.domain import Domain, DomainConfig  # noqa: E402
from announcements.lifecycle import Crier  # noqa: E402
from announcements.ports import ChatPlatform, RateLimits  # noqa: E402
from announcements.types import Purpose  # noqa: E402
from bench.harness import SLACK_ONLY, Observed, open_rows, user_id  # noqa: E402
from bot.inbound import Inbound, Pipeline  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.slack.platform import make_platform  # noqa: E402
from storage.db import Database, Priority  # noqa: E402
from storage.models import Delivery, Identity  # noqa: E402

TOKEN = "xoxb-0000-crier-test"


def left_to_send(db: Database, ann_id: int) -> bool:
    """Is any row of the announcement still open? (The engine's own probe, ``open_row``,
    not a count: the harness polls it every ``--poll`` seconds and must not slow the
    engine it measures.)"""
    with db.session() as s:
        return s.execute(select(ANNOUNCEMENT.c.id).where(
            ANNOUNCEMENT.c.id == ann_id, or_(*[open_row(st).is_not(None) for st in OPEN]))
        ).first() is not None


def message_ref(db: Database, ann_id: int, slack_user: str) -> str | None:
    """The Slack message a person clicks in (the click carries it, as Slack's does)."""
    with db.session() as s:
        return s.execute(select(col(Delivery.message_ref)).join(
            Identity, col(Identity.person_id) == col(Delivery.person_id)).where(
            col(Delivery.announcement_id) == ann_id,
            col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
            col(Identity.platform) == "slack",
            col(Identity.platform_user_id) == slack_user)).scalar_one_or_none()


async def probe(router: Pipeline, engine: DeliveryEngine, ann_id: int, stop: asyncio.Event,
                took: list[float], every: float = 0.02) -> None:
    """People 0, 1, 2, ... click "Got it", one every ``every`` seconds (each click on its
    own, as people's are), once their copy is well behind the engine."""

    async def click(person: int) -> None:
        # Slack's click carries the ref; looking it up is the harness's work, not timed,
        # and runs behind Crier's own work like any background call.
        ref = await engine.db.executor.run(message_ref, engine.db, ann_id, user_id(person),
                                           priority=Priority.BACKGROUND)
        started = time.perf_counter()
        reply = await router.press(Inbound("slack", user_id(person), message_ref=ref),
                                   f"ack:{ann_id}")
        took.append(time.perf_counter() - started)
        said = reply.message.text if reply is not None and reply.message is not None else ""
        assert "Acknowledged" in said, reply

    person, clicks = 0, set()
    lane = engine.lanes["slack"]
    while not stop.is_set():
        await asyncio.sleep(every)
        if lane.sent < person + 500:
            continue
        task = asyncio.create_task(click(person))
        clicks.add(task)
        task.add_done_callback(clicks.discard)
        person += 1
    await asyncio.gather(*clicks)


def done(db: Database, args: argparse.Namespace) -> bool:
    if args.until_sent:
        return not left_to_send(db, args.until_sent)
    return bool(args.until_empty) and open_rows(db) == 0


async def serve(args: argparse.Namespace) -> dict[str, Any]:
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    db = Database(args.db)
    clock = SystemClock()
    slack = make_platform(Settings(slack_bot_token=TOKEN, slack_signing_secret="bench",
                                   slack_api_url=args.slack_url))
    slack.limits = RateLimits(args.rate, 0, args.burst, args.ceiling)
    await slack.start()
    platform: ChatPlatform = Observed(slack) if args.observe else slack
    config = EngineConfig(concurrency=args.concurrency, lease=timedelta(seconds=args.lease),
                          batch_size=args.batch,
                          backoff_base=args.backoff, progress_interval=args.progress_interval)
    crier = Crier(Domain(db, clock, DomainConfig(channels=SLACK_ONLY)))
    engine = DeliveryEngine(db, RENDERERS, {"slack": platform}, clock, config, owner=args.owner,
                            channels=SLACK_ONLY)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    clicks: list[float] = []
    started = time.monotonic()
    running = asyncio.create_task(engine.run(stop))
    probing = (asyncio.create_task(probe(Pipeline(crier), engine, args.ack_probe, stop, clicks,
                                         every=args.click_every))
               if args.ack_probe else None)
    print("ready", flush=True)
    while not stop.is_set():
        await asyncio.wait([asyncio.create_task(stop.wait())], timeout=args.poll)
        if await db.executor.run(done, db, args, priority=Priority.BACKGROUND):
            stop.set()
    finished = time.monotonic()
    await running
    if probing is not None:
        await probing
    await slack.aclose()
    lane = engine.lanes["slack"]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out: dict[str, Any] = {
        "owner": engine.owner, "sent": lane.sent, "failed": lane.failed,
        "rate_limited": lane.rate_limited, "requests": lane.requests,
        "lane_rate": lane.throttle.rate,
        "db_errors": engine.db_errors, "started": started, "finished": finished,
        "max_rss_mb": usage.ru_maxrss / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }
    if isinstance(platform, Observed):
        out.update(started_inside=platform.started_inside,
                   in_flight_at_429=platform.in_flight_at_429,
                   observed_429=platform.rate_limited,
                   paused=platform.paused_seconds(started, finished),
                   windows=platform.windows)
    if clicks:
        ordered = sorted(clicks)
        out["ack_ms"] = {"n": len(ordered), "p50": 1000 * statistics.median(ordered),
                         "p99": 1000 * ordered[max(0, int(len(ordered) * 0.99) - 1)],
                         "max": 1000 * ordered[-1]}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--slack-url", required=True)
    parser.add_argument("--owner", default=None)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--lease", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s; 0 = no limit")
    parser.add_argument("--burst", type=int, default=1)
    parser.add_argument("--ceiling", type=float, default=0.0,
                        help="above --rate: adaptive pacing up to this rate")
    parser.add_argument("--backoff", type=float, default=EngineConfig().backoff_base,
                        help="first wait after a 5xx (doubles per attempt)")
    parser.add_argument("--progress-interval", type=float, default=5.0)
    parser.add_argument("--until-sent", type=int, default=0, metavar="ANN")
    parser.add_argument("--until-empty", action="store_true")
    parser.add_argument("--observe", action="store_true")
    parser.add_argument("--ack-probe", type=int, default=0, metavar="ANN")
    parser.add_argument("--click-every", type=float, default=0.02,
                        help="seconds between two people's clicks (--ack-probe)")
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--switch-interval", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    print(json.dumps(asyncio.run(serve(args))), flush=True)


if __name__ == "__main__":
    main()
