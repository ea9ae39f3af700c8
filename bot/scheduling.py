"""Runs the scheduler where this process leads, and posts the weekly report.

``SchedulerService.run_due()`` is what ``crier serve`` calls every second and
what the console calls after every line; tests call it after moving a
``ManualClock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from sqlmodel import select

from announcements import report_view
from announcements.clock import Clock
from announcements.ports import Attachment, ChatPlatform
from announcements.reports import WeeklyReport, weekly
from announcements.scheduling import ReportPost, Scheduler, TickResult
from storage.db import Database, Priority
from storage.events import prune
from storage.leader import Leadership
from storage.models import ReportSubscription

log = logging.getLogger("crier.scheduler")
T = TypeVar("T")


@dataclass
class SchedulerService:
    scheduler: Scheduler
    leadership: Leadership
    db: Database
    clock: Clock
    #: Where the weekly report is posted, by platform name.
    platforms: Mapping[str, ChatPlatform]
    #: Called after jobs ran (they may have written to the outbox: wake the workers).
    on_outbox: Callable[[], None] | None = None
    tick_interval: float = 1.0
    retry_lead: float = 3.0
    reconcile_every: float = 60.0
    #: Inbound event ids are kept this long for deduplication, then pruned.
    event_retention: timedelta = timedelta(days=2)
    posted: list[tuple[str, str]] = field(default_factory=list)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Scheduler work on the database executor, behind people's clicks."""
        return await self.db.executor.run(fn, *args, priority=Priority.BACKGROUND)

    async def run_due(self) -> TickResult:
        """Run due jobs once (if this process leads), then post any reports."""
        if not await self._db(self.leadership.try_acquire):
            return TickResult()
        result = await self._db(self.scheduler.tick)
        for post in result.reports:
            await self.post_weekly(post)
        if result.ran and self.on_outbox is not None:
            self.on_outbox()
        return result

    def report(self, late: timedelta | None = None) -> WeeklyReport:
        grace = self.scheduler.report.grace if self.scheduler.report else None
        shown_late = late if (late is not None and grace is not None and late > grace) else None
        return weekly(self.db, self.clock.now(), late=shown_late)

    async def post_weekly(self, post: ReportPost | None = None) -> int:
        """Post the weekly report to every subscribed channel; return how many got it."""
        report = await self._db(self.report, post.late if post else None)
        message = report_view.message(report_view.build(report))
        attachment = (Attachment(report_view.CHART_FILE, report.chart_png)
                      if report.chart_png else None)
        with self.db.session() as s:
            subs = [(r.platform, r.channel) for r in s.exec(select(ReportSubscription)).all()]
        sent = 0
        for platform, channel in subs:
            target = self.platforms.get(platform)
            if target is None:
                log.warning("report channel %s on %s: platform is off", channel, platform)
                continue
            try:
                await target.post_report(channel, message, attachment)
                self.posted.append((platform, channel))
                sent += 1
            except Exception as exc:  # noqa: BLE001 - one channel must not stop the others
                log.warning("could not post the weekly report to %s %s: %s", platform, channel,
                            exc)
        return sent

    def prune_events(self) -> int:
        return prune(self.db, self.clock.now() - self.event_retention)

    async def run(self, stop: asyncio.Event) -> None:
        """The loop of ``crier serve``: lead when possible, tick every second."""
        loop = asyncio.get_running_loop()
        last_reconcile = 0.0
        while not stop.is_set():
            try:
                leading = await self._db(self.leadership.try_acquire)
                if leading:
                    if loop.time() - last_reconcile > self.reconcile_every:
                        await self._db(self.scheduler.reconcile)
                        await self._db(self.prune_events)
                        last_reconcile = loop.time()
                    await self.run_due()
            except Exception as exc:  # noqa: BLE001 - keep scheduling through DB blips
                log.warning("scheduler tick failed: %s", exc)
            wait = self.tick_interval if self.leadership.held else self.retry_lead
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
        await self._db(self.leadership.release)
