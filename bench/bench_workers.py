"""Several ``crier worker`` processes sharing one PostgreSQL database.

    .venv/bin/python bench/bench_workers.py                       # 100,000 messages, 3 rounds
    .venv/bin/python bench/bench_workers.py --n 20000 --repeat 1 --baseline-seconds 10

For one worker, then two: a fresh PostgreSQL schema, N people, one approved
announcement in the outbox, the fake Slack (its own process, no rate limit; the lean
one of ``bench/lean_slack.py`` unless ``--fake full``) and the
delivery worker processes (``bench/worker.py``) started together. Reported: messages
per second from the first worker's start to the last one's end, each worker's share,
duplicates, and the plain slack_sdk loop against the same fake in the same run.
A shared 2-core machine's speed drifts from minute to minute, so rounds of (one, two,
loop) are interleaved and each round's ratio is reported with the median.
Figures go to stdout and ``bench/results/workers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from bench.bench_delivery import baseline  # noqa: E402
from bench.harness import (  # noqa: E402
    ROOT,
    FakeSlackProcess,
    broadcast,
    outbox_counts,
    populate,
    postgres_cpu_seconds,
    worker_command,
)
from storage.db import Database  # noqa: E402


def share(base: str, n: int, workers: int, lean: bool = True) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    try:
        db = Database(url)
        db.migrate()
        ann, _ = broadcast(db, populate(db, n))
        with FakeSlackProcess(lean=lean) as fake:
            fake_cpu, pg_cpu = fake.cpu_seconds(), postgres_cpu_seconds()
            procs = [subprocess.Popen(
                worker_command(url, fake.url, owner=f"worker-{i}", until_sent=ann),
                cwd=ROOT, stdout=subprocess.PIPE, text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)}) for i in range(workers)]
            outs = [json.loads(p.communicate(timeout=1800)[0].strip().splitlines()[-1])
                    for p in procs]
            fake_cpu, pg_cpu = fake.cpu_seconds() - fake_cpu, postgres_cpu_seconds() - pg_cpu
            seen = fake.stats()
        assert outbox_counts(db, ann) == {"delivered": n}, outbox_counts(db, ann)
        db.engine.dispose()
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    took = max(o["finished"] for o in outs) - min(o["started"] for o in outs)
    per_k = 1000 / n  # CPU seconds per 1,000 messages, whole runs (start-up included)
    cpu = {"workers": sum(o["cpu_seconds"] for o in outs) * per_k,
           "fake": fake_cpu * per_k, "postgres": pg_cpu * per_k}
    return {"workers": workers, "seconds": took, "per_second": n / took, "cpu_per_1000": cpu,
            "sent_each": [o["sent"] for o in outs], "duplicates": seen["duplicates"],
            "people": seen["people"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of (one worker, two workers, loop), interleaved")
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    parser.add_argument("--fake", choices=("lean", "full"), default="lean",
                        help="the fake Slack: lean (asyncio.Protocol, a few tens of µs a "
                             "request) or full (the tests' aiohttp fake)")
    args = parser.parse_args()
    lean = args.fake == "lean"
    rounds = []
    for i in range(args.repeat):
        one = share(args.pg, args.n, 1, lean)
        two = share(args.pg, args.n, 2, lean)
        loop = baseline(args.n, args.baseline_seconds, {"lean": lean})
        rounds.append({"one": one, "two": two, "baseline": loop,
                       "two_over_one": two["per_second"] / one["per_second"]})
        for r in (one, two):
            print(f"round {i + 1}: {r['workers']} worker(s): {args.n:,} in {r['seconds']:.1f} s "
                  f"({r['per_second']:.0f}/s), sent each {r['sent_each']}, duplicates "
                  f"{r['duplicates']}, people {r['people']:,}; CPU s per 1,000 messages: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in r["cpu_per_1000"].items()))
        print(f"round {i + 1}: slack_sdk loop {loop['per_second']:.0f}/s; two / one "
              f"{rounds[-1]['two_over_one']:.2f}", flush=True)
    med = {key: statistics.median(r[key]["per_second"] for r in rounds)
           for key in ("one", "two", "baseline")}
    ratios = [r["two_over_one"] for r in rounds]
    out = {"n": args.n, "fake": args.fake, "rounds": rounds, "median_per_second": med,
           "two_over_one": ratios, "median_two_over_one": statistics.median(ratios)}
    print(f"median of {args.repeat}: one worker {med['one']:.0f}/s, two workers "
          f"{med['two']:.0f}/s, slack_sdk loop {med['baseline']:.0f}/s; two / one per round "
          f"{', '.join(f'{x:.2f}' for x in ratios)} (median {out['median_two_over_one']:.2f})")
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "workers.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
