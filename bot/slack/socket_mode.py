"""Slack over Socket Mode: ``crier serve --slack-socket-mode`` with ``SLACK_APP_TOKEN``.

Crier opens a WebSocket to Slack (``apps.connections.open`` on ``SLACK_API_URL``
names it), so no public URL is needed: slash commands, clicks, form submissions
and events arrive over it and go to the very bolt app the HTTP route
``POST /slack/events`` uses (slack-bolt's async Socket Mode handler, which
acknowledges each envelope with its ``envelope_id``). Messages still go out
through the Web API with ``SLACK_BOT_TOKEN``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError

from bot.app import Runtime
from bot.server import Plugin
from bot.slack.app import SlackBot
from bot.slack.app import plugin as http_plugin

log = logging.getLogger("crier.slack")

REFUSED = ("Slack refused SLACK_APP_TOKEN (%s): create an app-level token with the "
           "connections:write scope (Basic Information → App-Level Tokens) and turn Socket "
           "Mode on; Slack commands and clicks will not reach Crier until then")
#: Waits between attempts while Slack cannot be reached (seconds, doubling).
RETRY_FIRST, RETRY_CAP = 2.0, 60.0


def plugin(runtime: Runtime) -> Plugin:
    """The Slack plugin with Socket Mode in place of ``POST /slack/events``."""
    http = http_plugin(runtime)
    bot = runtime.extras["slack"]
    assert isinstance(bot, SlackBot)
    token = runtime.settings.slack_app_token
    if not token:
        raise ValueError("SLACK_APP_TOKEN is not set; Socket Mode needs an app-level token")

    async def connect(stop: asyncio.Event) -> None:
        handler = AsyncSocketModeHandler(bot.app, token, web_client=bot.client,
                                         logger=logging.getLogger("crier.slack.socket"))
        try:
            url = await _open(bot, token, stop)
            if url is None:
                return
            handler.client.wss_uri = url
            await handler.connect_async()
            log.info("Slack: connected over Socket Mode")
            await stop.wait()
        finally:
            with contextlib.suppress(Exception):
                await handler.close_async()

    return Plugin(name=http.name, background=[connect], startup=http.startup,
                  shutdown=http.shutdown, info={"mode": "socket mode"})


async def _open(bot: SlackBot, token: str, stop: asyncio.Event) -> str | None:
    """The WebSocket URL from ``apps.connections.open``; None when the token is refused
    (said once, clearly) or Crier is stopping."""
    wait = RETRY_FIRST
    while not stop.is_set():
        try:
            opened = await bot.client.apps_connections_open(app_token=token)
            return str(opened["url"])
        except SlackApiError as exc:
            log.error(REFUSED, exc.response.get("error"))
            return None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("Slack is not reachable at %s (%s); Socket Mode retries in %.0fs",
                        bot.client.base_url, type(exc).__name__, wait)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
        wait = min(wait * 2, RETRY_CAP)
    return None
