"""What Telegram adds to ``crier serve``: ``POST /telegram/webhook`` and, for a
laptop without a public URL, a long-polling task (``--telegram-polling``).

An update whose handler failed has recorded nothing: the webhook answers 500,
so Telegram delivers it again, and long polling asks for it again (up to
``POLL_ATTEMPTS`` times) before moving its offset past it.

The webhook processes nothing unless the ``X-Telegram-Bot-Api-Secret-Token``
header equals ``TELEGRAM_WEBHOOK_SECRET`` (compared in constant time).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.error import RetryAfter, TelegramError

from announcements.ports import DeliveryError
from bot.app import Runtime
from bot.server import Plugin
from bot.telegram.handlers import ALLOWED_UPDATES, Handled, TelegramInbound
from bot.telegram.platform import TelegramPlatform, retry_seconds

log = logging.getLogger("crier.telegram")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: Telegram's updates are a few kilobytes; anything far larger is not one.
MAX_BODY = 1_000_000
#: How often long polling hands a failing update to the handlers before skipping it.
POLL_ATTEMPTS = 3


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status)


class TelegramServer:
    def __init__(self, runtime: Runtime, platform: TelegramPlatform,
                 poll_timeout: float = 25.0) -> None:
        self.runtime = runtime
        self.inbound = TelegramInbound(runtime, platform)
        self.poll_timeout = poll_timeout

    async def startup(self) -> None:
        """Register the commands; if Telegram is unreachable now, the first update retries."""
        try:
            await self.inbound.start()
        except (TelegramError, DeliveryError) as exc:
            log.error("cannot reach Telegram at start (%s); will retry on the first update", exc)

    async def webhook(self, request: Request) -> Response:
        secret = self.runtime.settings.telegram_webhook_secret
        given = request.headers.get(SECRET_HEADER)
        if not secret:
            log.warning("a Telegram webhook call was refused: TELEGRAM_WEBHOOK_SECRET is unset")
            return _error(403, "the webhook is off: set TELEGRAM_WEBHOOK_SECRET")
        if given is None:
            return _error(401, f"missing {SECRET_HEADER}")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return _error(403, f"wrong {SECRET_HEADER}")
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, "an update is never this large")
        try:
            data = json.loads(body)
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return _error(400, "not a Telegram update: no integer update_id")
        try:
            update = Update.de_json(data, self.inbound.app.bot)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("malformed Telegram update %s: %r", data.get("update_id"), exc)
            return _error(400, "malformed Telegram update")
        if await self.inbound.process_update(update) == Handled.FAILED:
            return _error(500, "the update failed; deliver it again")
        return JSONResponse({"ok": True})

    async def poll(self, stop: asyncio.Event) -> None:
        """Long polling (``getUpdates``) until ``stop`` is set."""
        await self.inbound.start()
        bot = self.inbound.app.bot
        await bot.delete_webhook()
        offset: int | None = None
        backoff = 1.0
        attempts: dict[int, int] = {}
        confirmed: int | None = None
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                fetch = asyncio.create_task(bot.get_updates(
                    offset=offset, timeout=int(self.poll_timeout),
                    allowed_updates=list(ALLOWED_UPDATES)))
                await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    fetch.cancel()
                    with contextlib.suppress(asyncio.CancelledError, TelegramError):
                        await fetch
                    break
                try:
                    updates = fetch.result()
                    confirmed = offset  # Telegram answered: it forgot what came before
                except RetryAfter as exc:
                    await _wait(stop, retry_seconds(exc))
                    continue
                except TelegramError as exc:
                    log.warning("telegram getUpdates failed (%s); retrying in %.0fs",
                                exc, backoff)
                    await _wait(stop, backoff)
                    backoff = min(backoff * 2, 60.0)
                    continue
                backoff = 1.0
                for update in updates:
                    try:
                        handled = await self.inbound.process_update(update)
                    except Exception:  # noqa: BLE001 - one bad update must not stop polling
                        log.exception("telegram update %s failed", update.update_id)
                        handled = Handled.FAILED
                    tries = attempts[update.update_id] = attempts.get(update.update_id, 0) + 1
                    if handled == Handled.FAILED and tries < POLL_ATTEMPTS:
                        await _wait(stop, backoff)  # fetch it again from this offset
                        break
                    attempts.pop(update.update_id, None)
                    offset = update.update_id + 1
        finally:
            stopping.cancel()
            if offset != confirmed:  # tell Telegram what was processed before stopping
                with contextlib.suppress(TelegramError):
                    await bot.get_updates(offset=offset, timeout=0, limit=1)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def plugin(runtime: Runtime, polling: bool = False) -> Plugin:
    """The Telegram routes and tasks for ``create_app``; needs ``runtime.platforms
    ["telegram"]`` (from ``make_platform``)."""
    platform = runtime.platforms.get("telegram")
    if not isinstance(platform, TelegramPlatform):
        raise ValueError("the runtime has no Telegram platform; build it with make_platform()")
    server = TelegramServer(runtime, platform)
    runtime.extras["telegram"] = server
    return Plugin(
        name="telegram",
        routes=[Route("/telegram/webhook", server.webhook, methods=["POST"])],
        background=[server.poll] if polling else [],
        startup=[server.startup],
        shutdown=[server.inbound.stop],
        info={"mode": "long polling" if polling else "webhook"},
    )
