"""One delivery worker process: the delivery part of ``crier serve``, sending to Slack.

    python -m bench.worker --db URL --slack-url URL [--owner NAME] [--concurrency 8]
                           [--lease 120] [--rate 0] [--until-empty]

Runs until SIGTERM/SIGINT (or, with ``--until-empty``, until no delivery row is
pending or being sent), then prints its counters as one JSON line. Used by the
process-level tests (two instances, kill -9) and the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from announcements.clock import SystemClock  # noqa: E402
from announcements.delivery import DeliveryEngine, EngineConfig  # noqa: E402
from announcements.lifecycle import Crier  # noqa: E402
from announcements.ports import RateLimits  # noqa: E402
from bench.harness import SLACK_ONLY, open_rows  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.slack.platform import make_platform  # noqa: E402
from storage.db import Database  # noqa: E402

TOKEN = "xoxb-0000-crier-test"


async def serve(args: argparse.Namespace) -> dict[str, object]:
    db = Database(args.db)
    clock = SystemClock()
    platform = make_platform(Settings(slack_bot_token=TOKEN, slack_signing_secret="bench",
                                      slack_api_url=args.slack_url))
    platform.limits = RateLimits(args.rate, 0, args.burst)
    await platform.start()
    config = EngineConfig(concurrency=args.concurrency, lease=timedelta(seconds=args.lease),
                          backoff_base=args.backoff, progress_interval=args.progress_interval)
    engine = DeliveryEngine(db, Crier(db, clock, SLACK_ONLY), {"slack": platform}, clock,
                            config, owner=args.owner)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.create_task(engine.run(stop))
    print("ready", flush=True)
    while not stop.is_set():
        await asyncio.wait([asyncio.create_task(stop.wait())], timeout=0.2)
        if args.until_empty and await asyncio.to_thread(open_rows, db) == 0:
            stop.set()
    await running
    await platform.aclose()
    lane = engine.lanes["slack"]
    return {"owner": args.owner, "sent": lane.sent, "failed": lane.failed,
            "rate_limited": lane.rate_limited, "requests": lane.requests,
            "db_errors": engine.db_errors}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--slack-url", required=True)
    parser.add_argument("--owner", default=None)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--lease", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s; 0 = no limit")
    parser.add_argument("--burst", type=int, default=1)
    parser.add_argument("--backoff", type=float, default=2.0)
    parser.add_argument("--progress-interval", type=float, default=5.0)
    parser.add_argument("--until-empty", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    print(json.dumps(asyncio.run(serve(args))), flush=True)


if __name__ == "__main__":
    main()
