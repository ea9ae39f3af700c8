"""The composition root: builds the database, domain, platforms, engine and router."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from announcements.clock import Clock, SystemClock
from announcements.corrections import Corrections
from announcements.delivery import DeliveryEngine, EngineConfig, config_from_env
from announcements.lifecycle import Crier
from announcements.outbox import Channels
from announcements.ports import ChatPlatform
from announcements.quiet import parse_quiet_hours
from announcements.scheduling import ReportSchedule, Scheduler
from announcements.timespec import require_every, zone
from bot import report_commands
from bot.inbound import Pipeline
from bot.scheduling import SchedulerService
from bot.settings import Settings
from storage.db import Database
from storage.leader import Leadership


@dataclass
class Runtime:
    settings: Settings
    db: Database
    crier: Crier
    platforms: dict[str, ChatPlatform]
    engine: DeliveryEngine
    router: Pipeline
    scheduler: SchedulerService
    extras: dict[str, object] = field(default_factory=dict)


def build(
    settings: Settings,
    platforms: dict[str, ChatPlatform],
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    engine_config: EngineConfig | None = None,
) -> Runtime:
    db = db or Database(settings.database_url)
    clock = clock or SystemClock()
    by_email = frozenset(n for n, p in platforms.items() if p.identifies_by_email)
    channels = Channels(
        enabled=tuple(platforms),
        order=tuple(settings.platform_order) + tuple(sorted(by_email)),
        by_email=by_email,
    )
    crier = Crier(db, clock, channels,
                  quiet=parse_quiet_hours(settings.working_hours, settings.working_days),
                  nudge_max=settings.nudge_max)
    corrections = Corrections(crier)
    crier.actions.update(corrections.buttons())
    engine = DeliveryEngine(db, crier, platforms, clock,
                            engine_config or config_from_env(settings.extra))
    engine.renderers.update(corrections.renderers())
    router = Pipeline(crier, on_outbox=engine.poke,
                    extensions={**corrections.commands(), "report": report_commands.command(crier)})
    scheduler = Scheduler(crier, report_schedule(settings))
    crier.after_approval = scheduler.schedule_for
    runtime = Runtime(settings, db, crier, platforms, engine, router,
                      SchedulerService(None, scheduler, Leadership(db)))
    runtime.scheduler.runtime = runtime
    return runtime


def report_schedule(settings: Settings) -> ReportSchedule:
    every = require_every(settings.report_schedule, "CRIER_REPORT_SCHEDULE")
    zone(settings.report_timezone)
    return ReportSchedule(every, settings.report_timezone,
                          timedelta(minutes=settings.report_grace_minutes))
