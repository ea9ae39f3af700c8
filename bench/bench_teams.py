"""A 10,000-person Teams send through the delivery engine, against the fake Bot
Framework connector and token endpoint (``tests/fakes/teams_*``) over real HTTP.

    .venv/bin/python bench/bench_teams.py [--n 10000] [--rate 50] [--p429 0.0005]

The fakes run in their own process. Everyone has a conversation reference of their
own; the engine runs in this process with the Teams lane at ``--rate`` per second
(the default tenant budget) and 6 per conversation, like ``crier serve``. The
connector answers 429 (Retry-After 1 s) at random with probability ``--p429`` and
enforces 7 requests per second per conversation. Reported: wall time, messages per
second, share of the limit, 429s, requests that reached the connector while a
Retry-After ran, duplicates, peak RSS. ``--rate 0`` is the ceiling (no tenant limit).
Figures go to stdout and ``bench/results/teams.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from announcements.clock import SystemClock  # noqa: E402
from announcements.compose import RENDERERS  # noqa: E402
from announcements.delivery import DeliveryEngine, EngineConfig  # noqa: E402
from announcements.delivery.fanout import Channels  # noqa: E402
from bench.harness import broadcast, outbox_counts  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.teams.platform import ConversationRef, make_platform  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Identity, Person  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEAMS_ONLY = Channels(enabled=("teams",), order=("teams",), by_email=frozenset())


def serve_fakes(p429: float) -> None:
    """The fakes' process: print their URLs, serve until stdin closes, print counters."""
    from tests.fakes.teams_connector import FakeConnector
    from tests.fakes.teams_identity import FakeIdentity

    with FakeIdentity() as identity, FakeConnector(identity, p429=p429) as connector:
        print(json.dumps({"token_url": identity.token_url, "metadata": identity.metadata_url,
                          "service_url": connector.service_url}), flush=True)
        sys.stdin.read()
        posts = [r for r in connector.requests if r[0] == "POST"]
        ok = [r for r in posts if r[2] == 201]
        per_conv = [len(a) for a in connector.conversations.values()]
        print(json.dumps({"ok": len(ok), "posts": len(posts), "throttled": connector.throttled,
                          "early": connector.early,
                          "duplicates": sum(n - 1 for n in per_conv if n > 1)}), flush=True)


def populate(db: Database, n: int, service_url: str, tenant: str) -> list[int]:
    now = datetime.now(UTC)
    with db.session() as s:
        s.execute(insert(Person), [
            {"id": i + 1, "email": f"p{i}@bench.example", "name": f"Person {i}",
             "department": f"Dept {i % 10}", "timezone": "UTC", "active": True,
             "created_at": now, "updated_at": now} for i in range(n)])
        s.execute(insert(Identity), [
            {"person_id": i + 1, "platform": "teams", "platform_user_id": f"aad-{i}",
             "address": ConversationRef(service_url, f"a:conv-{i}", tenant, f"aad-{i}").dumps(),
             "linked_at": now} for i in range(n)])
    return list(range(1, n + 1))


async def send(db: Database, ann: int, n: int, settings: Settings, rate: float
               ) -> dict[str, Any]:
    platform = make_platform(settings)
    if rate:
        platform.limits = replace(platform.limits, per_second=rate)
    else:
        platform.limits = replace(platform.limits, per_second=0)
    engine = DeliveryEngine(db, RENDERERS, {"teams": platform}, SystemClock(),
                            EngineConfig(progress_min_recipients=10**9), channels=TEAMS_ONLY)
    stop = asyncio.Event()
    started = time.monotonic()
    runner = asyncio.create_task(engine.run(stop))
    while (await asyncio.to_thread(outbox_counts, db, ann)).get("delivered", 0) < n:
        await asyncio.sleep(0.5)
    took = time.monotonic() - started
    stop.set()
    engine.poke()
    await runner
    await platform.stop()
    lane = engine.lanes["teams"]
    return {"seconds": took, "rate_limited": lane.rate_limited, "pauses": lane.throttle.pauses,
            "requests": lane.requests}


def run(n: int, rate: float, p429: float, workdir: str) -> dict[str, Any]:
    fakes = subprocess.Popen([sys.executable, __file__, "--serve-fakes", "--p429", str(p429)],
                             cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert fakes.stdout is not None and fakes.stdin is not None
    urls = json.loads(fakes.stdout.readline())
    from tests.fakes.teams_identity import APP_ID, PASSWORD, TENANT

    db = Database(f"sqlite:///{workdir}/teams-{n}-{rate:g}.db")
    db.migrate()
    people = populate(db, n, urls["service_url"], TENANT)
    ann, fanout = broadcast(db, people, channels=TEAMS_ONLY)
    settings = Settings(database_url=str(db.url), teams_app_id=APP_ID,
                        teams_app_password=PASSWORD, teams_tenant_id=TENANT,
                        teams_token_url=urls["token_url"],
                        teams_openid_metadata_url=urls["metadata"])
    figures = asyncio.run(send(db, ann, n, settings, rate))
    fakes.stdin.close()
    seen = json.loads(fakes.stdout.readline())
    fakes.wait(10)
    per_second = n / figures["seconds"]
    return {"n": n, "rate": rate, "p429": p429, "fanout_s": round(fanout, 3),
            "seconds": round(figures["seconds"], 1), "per_second": round(per_second, 1),
            "share_of_limit": round(per_second / rate, 3) if rate else None,
            "connector_429s": seen["throttled"], "engine_pauses": figures["pauses"],
            "arrived_inside_retry_after": seen["early"], "duplicates": seen["duplicates"],
            "delivered": outbox_counts(db, ann), "max_rss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--p429", type=float, default=0.0005)
    parser.add_argument("--serve-fakes", action="store_true")
    args = parser.parse_args()
    if args.serve_fakes:
        serve_fakes(args.p429)
        return
    with tempfile.TemporaryDirectory() as workdir:
        result = run(args.n, args.rate, args.p429, workdir)
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "teams.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
