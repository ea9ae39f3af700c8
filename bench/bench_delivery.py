"""Delivery engine benchmark against the fake Slack Web API (over real HTTP).

    .venv/bin/python bench/bench_delivery.py                    # N = 10,000 and 100,000
    .venv/bin/python bench/bench_delivery.py --n 3000 --rate 300 --baseline-seconds 5  # ~2 min
    .venv/bin/python bench/bench_delivery.py --n 100000 --compare-switch-interval 0.0005

For each N, on a fresh SQLite database, with the fake in its own process and the
engine in a worker process (``bench/worker.py``, the delivery part of ``crier serve``):

- ceiling: the fake's rate limit off. Deliveries per second from the engine's start
  until every outbox row is recorded (claims, rendering, HTTP, status writes): once
  with nobody clicking (the engine against the loop, like for like), once while
  people click "Got it" (``--clicks`` a second, 50 by default), with the click latency.
- limited: the fake answers 429 (Retry-After, whole seconds) above ``--rate`` per
  second and injects 429s at random (``--p429``); the engine is configured with the
  same limit. Efficiency = successful sends per second / the limit, over the span from
  the first to the last success; "of open time" leaves out the seconds a Retry-After
  was running (the platform accepts nothing then).
- storm: the same limit, not adaptive; the fake also answers the first post every
  ``--storm-every`` seconds with 429 (Retry-After 1 s) and ``--storm-5xx`` of posts
  with 503, while people click. Efficiency leaves out the seconds a Retry-After ran,
  over the whole send and over its steady part (until the last row's first try:
  after it only retries of failed posts are left, each at its own time).
- control (``--compare-switch-interval S``): the ceiling again, with the worker's GIL
  switch interval set to S, as Crier did before issue 9, to compare clicks under the
  same machine load.
- baseline: what one would otherwise write, a loop over slack_sdk's ``chat_postMessage``
  with its built-in ``RateLimitErrorRetryHandler``, against the same fake (it runs at
  most ``--baseline-seconds``; it writes no status anywhere).
- kill -9 (first N only): a worker is killed a third of the way in; a new one takes
  over. Sends the platform has but the outbox had not recorded, and duplicates after.

Figures go to stdout and ``bench/results/delivery.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slack_sdk import WebClient  # noqa: E402
from slack_sdk.http_retry.builtin_handlers import (  # noqa: E402
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy import select  # noqa: E402
from sqlmodel import col  # noqa: E402

from announcements.clock import ManualClock  # noqa: E402
from announcements.compose import RENDERERS  # noqa: E402
from announcements.delivery import DeliveryEngine, EngineConfig  # noqa: E402
from announcements.ports import RateLimits  # noqa: E402
from announcements.types import OutboundMessage  # noqa: E402
from bench.harness import (  # noqa: E402
    MARKER,
    ROOT,
    FakeSlackProcess,
    broadcast,
    outbox_counts,
    populate,
    user_id,
    worker_command,
)
from bot.settings import Settings  # noqa: E402
from bot.slack.blocks import payload  # noqa: E402
from bot.slack.platform import make_platform  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Delivery  # noqa: E402

TOKEN = "xoxb-0000-crier-test"


_RUNS = itertools.count()
#: Seconds between two people's "Got it" clicks during a send (``--clicks``).
CLICK_EVERY = [0.02]


def fresh(n: int, workdir: str, name: str) -> tuple[Database, int, float]:
    db = Database(f"sqlite:///{workdir}/{name}-{next(_RUNS)}.db")
    db.migrate()
    people = populate(db, n)
    ann, fanout = broadcast(db, people)
    return db, ann, fanout


def run_worker(db: Database, fake: FakeSlackProcess, ann: int, *extra: str, rate: float = 0.0,
               owner: str = "bench") -> dict[str, Any]:
    cmd = worker_command(db.url.render_as_string(hide_password=False), fake.url, owner=owner,
                         rate=rate, until_sent=ann, extra=extra)
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        raise RuntimeError(f"worker failed:\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def ceiling(n: int, workdir: str, *extra: str, clicks: bool = True) -> dict[str, Any]:
    db, ann, fanout = fresh(n, workdir, f"ceiling{n}{len(extra)}{clicks}")
    probe = ("--ack-probe", str(ann), "--click-every", str(CLICK_EVERY[0])) if clicks else ()
    with FakeSlackProcess() as fake:
        w = run_worker(db, fake, ann, *probe, *extra)
        seen = fake.stats()
    took = w["finished"] - w["started"]
    assert outbox_counts(db, ann) == {"delivered": n}, outbox_counts(db, ann)
    return {"fanout_s": fanout, "seconds": took, "per_second": n / took,
            "max_rss_mb": w["max_rss_mb"], "duplicates": seen["duplicates"],
            "people": seen["people"], "ack_ms": w.get("ack_ms")}


def limited(n: int, workdir: str, rate: float, p429: float, *, p5xx: float = 0.0,
            every: float = 0.0, clicks: bool = True, extra: tuple[str, ...] = ()
            ) -> dict[str, Any]:
    """The engine paced at ``rate`` against a fake that allows ``rate`` (429 above it),
    answers 429 to ``p429`` of posts at random and to the first post every ``every``
    seconds, and 503 to ``p5xx`` of them."""
    db, ann, _ = fresh(n, workdir, f"limited{n}{every}{clicks}")
    config = {"limit": [rate, fake_burst(rate)], "chaos": [p429, p5xx, 1, every]}
    probe = ("--ack-probe", str(ann), "--click-every", str(CLICK_EVERY[0])) if clicks else ()
    with FakeSlackProcess(**config) as fake:
        w = run_worker(db, fake, ann, "--observe", *probe, *extra, rate=rate)
        seen = fake.stats()
    assert outbox_counts(db, ann) == {"delivered": n}, outbox_counts(db, ann)
    span = seen["last_ok"] - seen["first_ok"]
    paused = paused_within(w["windows"], seen["first_ok"], seen["last_ok"])
    achieved = (seen["ok"] - 1) / span  # successes per second between the first and last
    # Steady state: up to the last first try, while rows were still waiting their turn
    # (after it only retries of failed posts are left, each due at its own time).
    steady = seen["last_first_try"] - seen["first_ok"]
    steady_open = steady - paused_within(w["windows"], seen["first_ok"], seen["last_first_try"])
    return {"seconds": w["finished"] - w["started"], "per_second": achieved,
            "efficiency": achieved / rate, "open_efficiency": (seen["ok"] - 1) / (
                rate * max(span - paused, 1e-9)),
            "steady_open_efficiency": (seen["ok_by_last_first_try"] - 1) / (
                rate * max(steady_open, 1e-9)),
            "tail_s": seen["last_ok"] - seen["last_first_try"],
            "paused_s": paused, "rate_limited": seen["rate_limited"],
            "server_errors": seen["server_errors"],
            "started_inside": w["started_inside"], "arrived_inside": seen["early_requests"],
            "in_flight_at_429": w["in_flight_at_429"], "max_rss_mb": w["max_rss_mb"],
            "duplicates": seen["duplicates"], "people": seen["people"], "ack_ms": w.get("ack_ms")}


def fake_burst(rate: float) -> int:
    """Slack tolerates short bursts; the fake allows a twentieth of a second's worth."""
    return max(5, int(rate // 20))


def paused_within(windows: list[list[float]], start: float, end: float) -> float:
    total, reach = 0.0, start
    for a, b in sorted(windows):
        a, b = max(a, reach), min(b, end)
        if b > a:
            total, reach = total + b - a, b
    return total


def baseline(n: int, seconds: float, config: dict[str, Any]) -> dict[str, Any]:
    """A plain loop over chat_postMessage with slack_sdk's RateLimitErrorRetryHandler
    (and its ServerErrorRetryHandler for 5xx)."""
    body = payload(OutboundMessage(text=f"{MARKER}: please read", title="Announcement"))
    with FakeSlackProcess(**config) as fake:
        client = WebClient(token=TOKEN, base_url=fake.url,
                           retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=100),
                                           ServerErrorRetryHandler(max_retry_count=5)])
        sent, started = 0, time.monotonic()
        while sent < n and time.monotonic() - started < seconds:
            client.chat_postMessage(channel=user_id(sent), **body)
            sent += 1
        took = time.monotonic() - started
        seen = fake.stats()
    return {"sent": sent, "seconds": took, "per_second": sent / took,
            "rate_limited": seen["rate_limited"], "arrived_inside": seen["early_requests"]}


async def killed(n: int, workdir: str) -> dict[str, Any]:
    """kill -9 a third of the way in, then a new worker takes over."""
    db, ann, _ = fresh(n, workdir, f"killed{n}")
    with FakeSlackProcess() as fake:
        cmd = worker_command(db.url.render_as_string(hide_password=False), fake.url,
                             owner="doomed")
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        while fake.stats()["ok"] < n // 3:
            await asyncio.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        at_kill = fake.stats()
        with db.session() as s:
            recorded = len(s.execute(select(col(Delivery.id)).where(
                col(Delivery.announcement_id) == ann, col(Delivery.status) == "delivered")).all())
        later = ManualClock(datetime.now(UTC) + timedelta(seconds=121))
        platform = make_platform(Settings(slack_bot_token=TOKEN, slack_signing_secret="x",
                                          slack_api_url=fake.url))
        platform.limits = RateLimits(0, 0)
        await platform.start()
        engine = DeliveryEngine(db, RENDERERS, {"slack": platform}, later,
                                owner="replacement")
        await engine.drain()
        await platform.aclose()
        after = fake.stats()
    assert outbox_counts(db, ann) == {"delivered": n}
    # The replacement sends each row the outbox had not recorded once, so every
    # duplicate is a send the dead worker made (in flight or not yet written).
    return {"sent_at_kill": at_kill["people"], "recorded_at_kill": recorded,
            "duplicates": after["duplicates"], "people": after["people"],
            "bound": EngineConfig().concurrency + EngineConfig().max_unrecorded}


def show(n: int, r: dict[str, Any], rate: float, p429: float) -> None:
    c, lim, b0, b1 = r["ceiling"], r["limited"], r["baseline_off"], r["baseline_on"]
    print(f"\n== N = {n:,} recipients, SQLite; people click {1 / CLICK_EVERY[0]:g} a second "
          f"during the sends marked so ==")
    print(f"fan-out at approval (outbox rows written)   {c['fanout_s']:.2f} s")
    q = r["ceiling_quiet"]
    print("rate limit off (engine ceiling)")
    ratios = ", ".join(f"{x:.2f}x" for x in q["ratios"])
    print(f"  nobody clicking ({len(q['ratios'])} rounds, engine and loop in turns): Crier "
          f"{q['per_second']:,.0f} deliveries/s (median; status writes included) · slack_sdk "
          f"loop: {b0['per_second']:,.0f}/s (median) · ratio per round {ratios} (median "
          f"{statistics.median(q['ratios']):.2f}x) · duplicates {q['duplicates']}")
    print(f"  people clicking: Crier {c['per_second']:,.0f} deliveries/s ({c['seconds']:.1f} s)"
          f" · ratio to the loop {c['per_second'] / b0['per_second']:.2f}x")
    print(f"  peak memory (worker RSS) {c['max_rss_mb']:.0f} MB · duplicates {c['duplicates']}"
          f" · people served {c['people']:,}")
    if c.get("ack_ms"):
        a = c["ack_ms"]
        print(f"  'Got it' clicks during the send: n={a['n']} p50 {a['p50']:.1f} ms · "
              f"p99 {a['p99']:.1f} ms · max {a['max']:.1f} ms")
    if "ceiling_switch" in r:
        w, a = r["ceiling_switch"], r["ceiling_switch"]["ack_ms"]
        print(f"  control, worker with GIL switch interval {r['switch_interval']:g} s: "
              f"{w['per_second']:,.0f} deliveries/s; clicks n={a['n']} p50 {a['p50']:.1f} ms"
              f" · p99 {a['p99']:.1f} ms · max {a['max']:.1f} ms")
    print(f"rate limit {rate:g}/s, {p429:.2%} of posts answered 429 at random")
    print(f"  Crier: {lim['per_second']:,.1f}/s = {lim['efficiency']:.1%} of the limit "
          f"({lim['open_efficiency']:.1%} of it while no Retry-After ran; paused "
          f"{lim['paused_s']:.1f} s) · slack_sdk loop: {b1['per_second']:,.1f}/s "
          f"({b1['per_second'] / rate:.1%}) · ratio {lim['per_second'] / b1['per_second']:.1f}x")
    print(f"  429s {lim['rate_limited']} · requests started inside a Retry-After window "
          f"{lim['started_inside']} · arriving inside one (in flight at the 429) "
          f"{lim['arrived_inside']} · slack_sdk loop: 429s {b1['rate_limited']}, arriving "
          f"inside {b1['arrived_inside']}")
    print(f"  peak memory {lim['max_rss_mb']:.0f} MB · duplicates {lim['duplicates']}")
    if lim.get("ack_ms"):
        a = lim["ack_ms"]
        print(f"  'Got it' clicks during the send: n={a['n']} p50 {a['p50']:.1f} ms · "
              f"p99 {a['p99']:.1f} ms · max {a['max']:.1f} ms")
    st, b2 = r["storm"], r["baseline_storm"]
    print(f"storm: limit {rate:g}/s (not adaptive), a 429 (Retry-After 1 s) every "
          f"{st['every']:g} s, {st['p5xx']:.0%} of posts 503, people clicking; "
          f"N = {st['n']:,}")
    print(f"  Crier: {st['open_efficiency']:.1%} of the limit while no Retry-After ran, "
          f"whole send ({st['steady_open_efficiency']:.1%} until the last first try; the "
          f"{st['tail_s']:.1f} s after it were retries) · {st['per_second']:,.1f}/s overall, "
          f"paused {st['paused_s']:.0f} s of {st['seconds']:.0f} s")
    print(f"  429s {st['rate_limited']} · 503s {st['server_errors']} · requests started "
          f"inside a Retry-After window {st['started_inside']} · arriving inside one "
          f"{st['arrived_inside']} · duplicates {st['duplicates']} · people {st['people']:,}")
    if st.get("ack_ms"):
        a = st["ack_ms"]
        print(f"  'Got it' clicks during the send: n={a['n']} p50 {a['p50']:.1f} ms · "
              f"p99 {a['p99']:.1f} ms · max {a['max']:.1f} ms")
    print(f"  slack_sdk loop with its retry handler, same fake: {b2['per_second']:,.1f}/s "
          f"({b2['per_second'] / rate:.1%} of the limit, pauses included), 429s "
          f"{b2['rate_limited']}")
    if "killed" in r:
        k = r["killed"]
        print(f"kill -9 after ~{k['sent_at_kill']:,} sends ({k['recorded_at_kill']:,} recorded):"
              f" duplicates after takeover {k['duplicates']} = sends in flight or not yet "
              f"recorded (bound {k['bound']}) · people served {k['people']:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="10000,100000", help="comma-separated recipient counts")
    parser.add_argument("--rate", type=float, default=500.0, help="the fake's limit, posts/s")
    parser.add_argument("--p429", type=float, default=0.0002, help="share of random 429s")
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    parser.add_argument("--clicks", type=float, default=50.0,
                        help="people's clicks per second during the sends")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of (loop, engine) for the ceiling with nobody clicking")
    parser.add_argument("--storm-n", type=int, default=50_000,
                        help="recipients of the storm run (at most --n)")
    parser.add_argument("--storm-every", type=float, default=2.0,
                        help="seconds between the storm's 429s")
    parser.add_argument("--storm-5xx", type=float, default=0.01, help="share of 503s")
    parser.add_argument("--compare-switch-interval", type=float, default=0.0, metavar="S",
                        help="also run the ceiling with the worker's GIL switch interval "
                             "set to S seconds (the set-up before issue 9), as a control")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "delivery.json"))
    args = parser.parse_args()
    sizes = [int(x) for x in args.n.split(",")]
    CLICK_EVERY[0] = 1 / args.clicks
    results: dict[str, Any] = {"rate": args.rate, "p429": args.p429, "sizes": {}}
    with tempfile.TemporaryDirectory() as workdir:
        for i, n in enumerate(sizes):
            # The machine's speed drifts: the loop and the engine run in turns, and the
            # median of each round's ratio is the figure.
            pairs = []
            for _ in range(args.repeat):
                loop = baseline(n, args.baseline_seconds, {})
                pairs.append({"baseline": loop, "crier": ceiling(n, workdir, clicks=False)})
            r: dict[str, Any] = {"pairs": pairs, "ceiling": ceiling(n, workdir)}
            r["ceiling_quiet"] = {
                **pairs[0]["crier"],
                "per_second": statistics.median(p["crier"]["per_second"] for p in pairs),
                "ratios": [p["crier"]["per_second"] / p["baseline"]["per_second"]
                           for p in pairs]}
            r["baseline_off"] = {
                **pairs[0]["baseline"],
                "per_second": statistics.median(p["baseline"]["per_second"] for p in pairs)}
            if args.compare_switch_interval:
                r["switch_interval"] = args.compare_switch_interval
                r["ceiling_switch"] = ceiling(n, workdir, "--switch-interval",
                                              str(args.compare_switch_interval))
            r["limited"] = limited(n, workdir, args.rate, args.p429)
            r["baseline_on"] = baseline(n, args.baseline_seconds, {
                "limit": [args.rate, fake_burst(args.rate)], "chaos": [args.p429, 0.0, 1]})
            storm_n = min(n, args.storm_n)
            r["storm"] = {"n": storm_n, "every": args.storm_every, "p5xx": args.storm_5xx,
                          **limited(storm_n, workdir, args.rate, 0.0, p5xx=args.storm_5xx,
                                    every=args.storm_every)}
            r["baseline_storm"] = baseline(storm_n, args.baseline_seconds, {
                "limit": [args.rate, fake_burst(args.rate)],
                "chaos": [0.0, args.storm_5xx, 1, args.storm_every]})
            if i == 0:
                r["killed"] = asyncio.run(killed(n, workdir))
            results["sizes"][n] = r
            show(n, r, args.rate, args.p429)
            for path in Path(workdir).glob("*.db*"):
                path.unlink()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\n(figures saved to {args.out})")


if __name__ == "__main__":
    main()
