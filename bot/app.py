"""The composition root: the application is built once, here, from its parts.

Nothing is patched afterwards: the domain gets its settings in ``DomainConfig``,
the scheduler hears about approvals through the ``Approved`` domain event, and
the scheduler service gets the database, clock, platforms and the engine's wake-up
call it needs instead of a pointer back to the ``Runtime``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from announcements.categories import Categories
from announcements.clock import Clock, SystemClock
from announcements.compose import RENDERERS
from announcements.delivery import DeliveryEngine, EngineConfig, config_from_env
from announcements.delivery.fanout import Channels
from announcements.domain import Domain, DomainConfig
from announcements.errors import CrierError
from announcements.events import Approved, EventBus
from announcements.lifecycle import Crier
from announcements.ports import ChatPlatform
from announcements.quiet import parse_quiet_hours
from announcements.scheduling import ReportSchedule, Scheduler
from announcements.timespec import parse_duration, require_every, zone
from bot import governance_commands, report_commands
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
    config = DomainConfig(
        channels=channels,
        quiet=parse_quiet_hours(settings.working_hours, settings.working_days),
        nudge_max=settings.nudge_max,
        min_interval=min_interval(settings),
        categories=Categories.parse(settings.categories),
        optional_daily_cap=settings.optional_daily_cap,
    )
    events = EventBus()
    domain = Domain(db, clock, config, events)
    scheduler = Scheduler(domain, report_schedule(settings), settings.retention_days)
    events.subscribe(Approved, scheduler.on_approved)
    crier = Crier(domain)
    engine = DeliveryEngine(db, RENDERERS, platforms, clock,
                            engine_config or config_from_env(settings.extra), channels=channels)
    extensions = {**crier.corrections.commands(), "report": report_commands.command(crier),
                  **governance_commands.commands(crier)}
    router = Pipeline(crier, on_outbox=engine.poke, extensions=extensions)
    service = SchedulerService(scheduler, Leadership(db), db, clock, platforms,
                               on_outbox=engine.poke)
    return Runtime(settings, db, crier, platforms, engine, router, service)


def report_schedule(settings: Settings) -> ReportSchedule:
    every = require_every(settings.report_schedule, "CRIER_REPORT_SCHEDULE")
    zone(settings.report_timezone)
    return ReportSchedule(every, settings.report_timezone,
                          timedelta(minutes=settings.report_grace_minutes))


def min_interval(settings: Settings) -> timedelta:
    span = parse_duration(settings.min_interval)
    if span is None:
        raise CrierError(f"CRIER_MIN_INTERVAL={settings.min_interval!r} is not a duration",
                         "Set CRIER_MIN_INTERVAL to e.g. 1h, 30m or 1d.")
    return span
