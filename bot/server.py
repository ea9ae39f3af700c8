"""The one ASGI app of ``crier serve``: platform webhooks, health and metrics.

Platform packages contribute routes (``POST /slack/events``,
``POST /telegram/webhook``, ``POST /api/messages``) and background tasks; the
app's lifespan runs the delivery engine (and, where this process holds it,
the scheduler) next to them.
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
from storage.db import DatabaseUnavailable

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


def create_app(
    runtime: Runtime, plugins: Sequence[Plugin] = (), *, run_workers: bool = True
) -> Starlette:
    async def healthz(_: Request) -> Response:
        try:
            await asyncio.to_thread(runtime.db.check)
        except DatabaseUnavailable as exc:
            return JSONResponse({"status": "unavailable", "database": str(exc)}, 503)
        lanes = {name: {"in_flight": lane.in_flight, "sent": lane.sent}
                 for name, lane in runtime.engine.lanes.items()}
        return JSONResponse({"status": "ok", "platforms": sorted(runtime.platforms),
                             "delivery": lanes})

    async def metrics(_: Request) -> Response:
        body = await asyncio.to_thread(render_metrics, runtime)
        return Response(body, media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        for plugin in plugins:
            for hook in plugin.startup:
                await hook()
        tasks = []
        if run_workers:
            tasks.append(asyncio.create_task(runtime.engine.run(stop), name="delivery"))
            tasks.append(asyncio.create_task(runtime.scheduler.run(stop), name="scheduler"))
            for plugin in plugins:
                tasks += [asyncio.create_task(bg(stop), name=plugin.name)
                          for bg in plugin.background]
        try:
            yield
        finally:
            stop.set()
            runtime.engine.poke()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 10)
            for plugin in plugins:
                for hook in plugin.shutdown:
                    await hook()

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    for plugin in plugins:
        routes.extend(plugin.routes)
    return Starlette(routes=routes, lifespan=lifespan)
