"""The one ASGI app of ``crier serve``: platform webhooks, health and metrics.

Platform packages contribute routes (``POST /slack/events``,
``POST /telegram/webhook``, ``POST /api/messages``) and background tasks (Telegram
polling); the app's lifespan runs them, and unless ``run_workers`` is off
(``crier serve --no-delivery``) the delivery engine and the scheduler, all
supervised (``bot.supervision``).

``/healthz`` answers 200 ``ok`` only when the database takes a write and every
supervised task runs; otherwise 503 with the reason: ``unavailable`` (the
database) or ``degraded`` (a task is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.app import Runtime
from bot.metrics import render_metrics
from bot.supervision import Supervisor
from storage.db import DatabaseUnavailable, Priority

log = logging.getLogger("crier.server")

BackgroundTask = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class Plugin:
    """What a platform package adds to the server."""

    name: str
    routes: Sequence[BaseRoute] = ()
    background: Sequence[BackgroundTask] = ()
    startup: Sequence[Callable[[], Awaitable[None]]] = ()
    shutdown: Sequence[Callable[[], Awaitable[None]]] = ()
    info: dict[str, str] = field(default_factory=dict)


def supervise(runtime: Runtime, supervisor: Supervisor, *, workers: bool = True,
              plugins: Sequence[Plugin] = ()) -> None:
    """Declare the process's background tasks: the delivery engine and the scheduler
    (``workers``), and the plugins' own (polling)."""
    if workers:
        supervisor.add("delivery", runtime.engine.run)
        supervisor.add("scheduler", runtime.scheduler.run)
    for plugin in plugins:
        for i, work in enumerate(plugin.background):
            supervisor.add(plugin.name if i == 0 else f"{plugin.name}-{i}", work)


def health(runtime: Runtime, supervisor: Supervisor) -> tuple[int, dict[str, Any]]:
    """The ``/healthz`` answer (status code, body); runs on the database executor."""
    try:
        runtime.db.check()
        runtime.db.check_writable()
    except DatabaseUnavailable as exc:
        return 503, {"status": "unavailable", "database": str(exc)}
    body: dict[str, Any] = {
        "status": "ok", "platforms": sorted(runtime.platforms),
        "tasks": {name: "up" if t.up else t.reason for name, t in supervisor.tasks.items()},
        "delivery": {name: {"in_flight": lane.in_flight, "sent": lane.sent}
                     for name, lane in runtime.engine.lanes.items()}}
    down = supervisor.down()
    if down:
        body["status"] = "degraded"
        body["reason"] = "; ".join(f"{name} is down ({why})" for name, why in down.items())
        return 503, body
    return 200, body


def create_app(
    runtime: Runtime, plugins: Sequence[Plugin] = (), *, run_workers: bool = True,
    supervisor: Supervisor | None = None,
) -> Starlette:
    supervisor = supervisor or Supervisor()
    supervise(runtime, supervisor, workers=run_workers, plugins=plugins)

    async def healthz(_: Request) -> Response:
        code, body = await runtime.db.executor.run(health, runtime, supervisor)
        return JSONResponse(body, code)

    async def metrics(_: Request) -> Response:
        body = await runtime.db.executor.run(render_metrics, runtime, supervisor,
                                             priority=Priority.BACKGROUND)
        return Response(body, media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await start_platforms(runtime)
        for plugin in plugins:
            for hook in plugin.startup:
                await hook()
        supervisor.start()
        try:
            yield
        finally:
            runtime.engine.poke()
            await supervisor.stop()
            for plugin in plugins:
                for hook in plugin.shutdown:
                    await hook()
            await stop_platforms(runtime)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    for plugin in plugins:
        routes.extend(plugin.routes)
    return Starlette(routes=routes, lifespan=lifespan)


async def start_platforms(runtime: Runtime) -> None:
    """Open every platform's HTTP clients before anything sends or receives. A platform
    that cannot start yet (unreachable, token refused) is logged in one line and tried
    again on its first send; the others and the server still start."""
    names = list(runtime.platforms)
    results = await asyncio.gather(*(runtime.platforms[n].start() for n in names),
                                   return_exceptions=True)
    for name, result in zip(names, results, strict=True):
        if isinstance(result, Exception):
            log.warning("%s did not start: %s (tried again when it is next used)", name, result)


async def stop_platforms(runtime: Runtime) -> None:
    """Close them again, after the workers and plugins have stopped."""
    await asyncio.gather(*(p.stop() for p in runtime.platforms.values()),
                         return_exceptions=True)
