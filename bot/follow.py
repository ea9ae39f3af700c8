"""A terminal progress bar for a send started from the CLI.

    sent = await follow(runtime, ann_id)

It reads the outbox; the delivery engine does the sending, in this process
(``runtime.engine.run``) or in a ``crier serve`` on the same database.
"""

from __future__ import annotations

import asyncio

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from announcements.delivery import progress
from announcements.errors import NotFound
from announcements.types import Status
from bot.app import Runtime
from storage.db import Database
from storage.models import Announcement

#: Still to come: nothing has started sending yet.
WAITING = (Status.DRAFT, Status.PENDING_APPROVAL, Status.APPROVED, Status.SCHEDULED)


def _read(db: Database, ann_id: int) -> tuple[str, progress.Progress]:
    with db.session() as s:
        ann = s.get(Announcement, ann_id)
        if ann is None:
            raise NotFound(f"there is no announcement #{ann_id}", "See `crier list`.")
        return ann.status, progress.snapshot(s, ann_id)


async def follow(runtime: Runtime, ann_id: int, *, console: Console | None = None,
                 poll: float = 0.5) -> progress.Progress:
    """Show delivered / failed / acknowledged until nothing is left to send (or
    delete, or update); return the final numbers."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"#{ann_id}", total=None, detail="waiting")
        while True:
            status, now = await runtime.db.executor.run(_read, runtime.db, ann_id)
            detail = (f"failed {now.failed} · unreachable {now.unreachable} · "
                      f"acknowledged {now.acknowledged}")
            if now.recalled or now.deleting:
                detail += f" · recalled {now.recalled}"
            bar.update(task, total=now.total or None, completed=now.settled,
                       description=f"#{ann_id} {status.replace('_', ' ')}", detail=detail)
            if status not in WAITING and not now.busy:
                return now
            await asyncio.sleep(poll)
