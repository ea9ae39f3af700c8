"""Crash recovery: a worker killed with SIGKILL mid-send, then a new one started.

    .venv/bin/python bench/bench_recovery.py              # 10,000 people, SQLite
    .venv/bin/python bench/bench_recovery.py --n 3000

A worker process (``bench/worker.py``) sends to the fake Slack (its own process, no
rate limit) and is killed a third of the way in; a new worker process is started at
once. Reported: seconds from the restart until every recipient is served (before
heartbeats the dead worker's rows waited for their 120-second lease), sends the
outbox had not recorded at the kill, and duplicates. Figures go to stdout and
``bench/results/recovery.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_delivery import fresh, run_worker  # noqa: E402
from bench.harness import ROOT, FakeSlackProcess, outbox_counts, worker_command  # noqa: E402


def recovery(n: int, workdir: str) -> dict[str, Any]:
    db, ann, _ = fresh(n, workdir, f"recovery{n}")
    with FakeSlackProcess() as fake:
        cmd = worker_command(db.url.render_as_string(hide_password=False), fake.url,
                             owner="doomed")
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        while fake.stats()["ok"] < n // 3:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        at_kill = fake.stats()["people"]
        recorded = outbox_counts(db, ann).get("delivered", 0)
        restarted = time.monotonic()
        run_worker(db, fake, ann, owner="replacement")
        took = time.monotonic() - restarted
        after = fake.stats()
    assert outbox_counts(db, ann) == {"delivered": n}, outbox_counts(db, ann)
    return {"n": n, "served_after_restart_s": took, "sent_at_kill": at_kill,
            "recorded_at_kill": recorded, "duplicates": after["duplicates"],
            "people": after["people"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        r = recovery(args.n, workdir)
    print(f"kill -9 at {r['sent_at_kill']} of {r['n']} sent ({r['recorded_at_kill']} recorded); "
          f"every recipient served {r['served_after_restart_s']:.1f} s after the restart; "
          f"duplicates {r['duplicates']}; people reached {r['people']}")
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "recovery.json").write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
