"""A real aiohttp server on 127.0.0.1, port 0, in a thread of its own: the base of
every fake platform API (usable from sync tests, async tests and benchmarks)."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Self

from aiohttp import web


class ThreadedServer:
    #: Shown in thread names and errors.
    label = "fake API"
    max_body = 20 * 1024 * 1024
    backlog = 1024

    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        """Add the API's routes."""
        raise NotImplementedError

    def on_loop(self) -> None:
        """Runs in the server's loop before it starts (create loop-bound objects here)."""

    async def open(self, sock: socket.socket) -> None:
        """Serve on ``sock`` (the server's loop): the aiohttp application of ``routes``."""
        app = web.Application(client_max_size=self.max_body)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, backlog=self.backlog).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def start(self) -> Self:
        ready = threading.Event()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self.on_loop()
            loop.run_until_complete(self.open(sock))
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=serve, name=self.label, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"the {self.label} did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)
