"""Assemble ``crier serve`` (every configured platform, its routes and, unless
``--no-delivery``, the workers) and ``crier worker`` (the delivery engine and the
scheduler without an HTTP server), so an operator can run them apart."""

from __future__ import annotations

import asyncio
import logging
import signal

from starlette.applications import Starlette

from announcements.ports import ChatPlatform
from bot.app import Runtime, build
from bot.server import Plugin, create_app, start_platforms, stop_platforms, supervise
from bot.settings import Settings
from bot.supervision import Supervisor
from storage.db import Database

log = logging.getLogger("crier.worker")


def platforms_for(settings: Settings) -> dict[str, ChatPlatform]:
    """The chat platforms the settings turn on, by name."""
    platforms: dict[str, ChatPlatform] = {}
    if settings.slack_enabled:
        from bot.slack import make_platform as slack_platform

        platforms["slack"] = slack_platform(settings)
    if settings.telegram_enabled:
        from bot.telegram import make_platform as telegram_platform

        platforms["telegram"] = telegram_platform(settings)
    if settings.teams_enabled:
        from bot.teams import make_platform as teams_platform

        platforms["teams"] = teams_platform(settings)
    return platforms


def build_server(
    settings: Settings, db: Database, *, telegram_polling: bool = False,
    slack_socket_mode: bool = False, run_workers: bool = True,
) -> tuple[Starlette, list[str]]:
    platforms = platforms_for(settings)
    runtime = build(settings, platforms, db=db)
    plugins: list[Plugin] = []
    if "slack" in platforms:
        from bot.slack import plugin as http_plugin
        from bot.slack.socket_mode import plugin as socket_plugin

        plugins.append((socket_plugin if slack_socket_mode else http_plugin)(runtime))
    if "telegram" in platforms:
        from bot.telegram import plugin as telegram_plugin

        plugins.append(telegram_plugin(runtime, polling=telegram_polling))
    if "teams" in platforms:
        from bot.teams import plugin as teams_plugin

        plugins.append(teams_plugin(runtime))
    return create_app(runtime, plugins, run_workers=run_workers), sorted(platforms)


async def run_worker(settings: Settings, db: Database,
                     stop: asyncio.Event | None = None) -> Runtime:
    """``crier worker``: deliver and schedule until SIGTERM/SIGINT (or ``stop``)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runtime = build(settings, platforms_for(settings), db=db)
    supervisor = Supervisor()
    supervise(runtime, supervisor, workers=True)
    await start_platforms(runtime)
    supervisor.start(stop)
    log.info("worker running: delivery and scheduler for %s",
             ", ".join(sorted(runtime.platforms)) or "no platform")
    try:
        await stop.wait()
    finally:
        runtime.engine.poke()
        await supervisor.stop()
        await stop_platforms(runtime)
        log.info("worker stopped")
    return runtime
