"""A `crier serve`-like process that only schedules, for the multi-process tests.

    python -m tests.scheduler_worker DATABASE_URL SECONDS MARKER_DIR

When it becomes the leader it creates MARKER_DIR/leader-<pid>.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from bot.app import build
from bot.settings import Settings
from storage.db import Database


async def main(url: str, seconds: float, markers: str) -> None:
    runtime = build(Settings(database_url=url, working_hours="off"), {}, db=Database(url))
    service = runtime.scheduler
    service.tick_interval = 0.2
    service.retry_lead = 0.3
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    was_leader = False
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        if service.leadership.held and not was_leader:
            print(f"LEADER {os.getpid()} {time.time():.6f}", flush=True)
            with open(os.path.join(markers, f"leader-{os.getpid()}"), "w") as fh:
                fh.write("leader\n")
            was_leader = True
        await asyncio.sleep(0.05)
    stop.set()
    await task  # releases the lock
    if was_leader:
        print(f"RELEASED {os.getpid()} {time.time():.6f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
