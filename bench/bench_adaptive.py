"""Adaptive pacing against a fake Slack whose limit is hidden from Crier.

    .venv/bin/python bench/bench_adaptive.py                      # 20,000 people, cap 150/s
    .venv/bin/python bench/bench_adaptive.py --n 3000 --baseline-seconds 10   # quicker

The fake Slack (its own process) answers 429 with ``Retry-After: 1`` above ``--cap``
messages per second. The engine (``bench/worker.py``, a worker process) starts at
``--start`` per second with a ceiling of ``--ceiling`` and must find the cap by itself.
Reported: completion time against the target ``1.25 × N / cap`` (plus the ramp-up),
the share of requests answered 429, requests Crier started inside a Retry-After window
(seen from outside the engine) and requests the fake saw arrive inside one, and the
plain slack_sdk loop (``RateLimitErrorRetryHandler``) against the same fake in the same
run, for the ratio. Figures go to stdout and ``bench/results/adaptive.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_delivery import baseline, fake_burst, fresh, run_worker  # noqa: E402
from bench.harness import ROOT, FakeSlackProcess, outbox_counts  # noqa: E402


def adaptive(n: int, workdir: str, cap: float, start: float, ceiling: float) -> dict[str, Any]:
    db, ann, _ = fresh(n, workdir, f"adaptive{n}")
    config = {"limit": [cap, fake_burst(cap)]}
    with FakeSlackProcess(**config) as fake:
        w = run_worker(db, fake, ann, "--observe", "--ceiling", str(ceiling), rate=start)
        seen = fake.stats()
    assert outbox_counts(db, ann) == {"delivered": n}, outbox_counts(db, ann)
    took = w["finished"] - w["started"]
    return {"seconds": took, "per_second": n / took, "requests": w["requests"],
            "rate_limited": w["rate_limited"], "share_429": w["rate_limited"] / w["requests"],
            "started_inside": w["started_inside"], "arrived_inside": seen["early_requests"],
            "final_rate": w["lane_rate"], "duplicates": seen["duplicates"],
            "people": seen["people"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--cap", type=float, default=150.0)
    parser.add_argument("--start", type=float, default=8.0)
    parser.add_argument("--ceiling", type=float, default=400.0)
    parser.add_argument("--baseline-seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        crier = adaptive(args.n, workdir, args.cap, args.start, args.ceiling)
    loop = baseline(args.n, args.baseline_seconds, {"limit": [args.cap, fake_burst(args.cap)]})
    target = 1.25 * args.n / args.cap
    out = {"n": args.n, "cap": args.cap, "start": args.start, "ceiling": args.ceiling,
           "crier": crier, "baseline": loop, "target_s": target,
           "ratio": crier["per_second"] / loop["per_second"]}
    print(f"Crier: {args.n} messages in {crier['seconds']:.1f} s ({crier['per_second']:.1f}/s; "
          f"target {target:.0f} s + ramp-up), 429s {crier['rate_limited']} of "
          f"{crier['requests']} requests ({100 * crier['share_429']:.2f} %), started inside "
          f"a Retry-After window {crier['started_inside']}, arrived inside "
          f"{crier['arrived_inside']}, final lane rate {crier['final_rate']:.1f}/s, "
          f"duplicates {crier['duplicates']}")
    print(f"slack_sdk loop: {loop['sent']} in {loop['seconds']:.1f} s "
          f"({loop['per_second']:.1f}/s), 429s {loop['rate_limited']}, arrived inside "
          f"{loop['arrived_inside']}")
    print(f"ratio Crier / loop: {out['ratio']:.2f}")
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "adaptive.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
