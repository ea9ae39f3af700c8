"""Slack as a ``ChatPlatform``: chat.postMessage / chat.update / chat.delete and
files_upload_v2, with Slack's answers turned into the delivery engine's errors.

The client has no retry handlers of its own: the engine decides when to retry,
so a 429 is reported at once with its ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError, SlackRequestError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from announcements.ports import (
    Attachment,
    DeliveryError,
    PermanentError,
    RateLimited,
    RateLimits,
    TransientError,
    Unreachable,
)
from announcements.types import OutboundMessage
from bot.settings import Settings
from bot.slack.blocks import BlockKitLimit, payload

log = logging.getLogger("crier.slack")

# Slack's posting limits (https://docs.slack.dev/apis/web-api/rate-limits, "Special Tier"):
# chat.postMessage "generally allows posting one message per second per channel, while
# also maintaining a workspace-wide limit"; the chat.postMessage reference puts that cap
# at "several hundred messages per minute". Crier paces at 1/s per conversation and
# 8/s (480/min) per workspace with a burst of 10; a 429 pauses the lane for Retry-After.
# The workspace cap is undisclosed and differs between workspaces, so the lane is adaptive:
# it starts at 8/s and probes up to WORKSPACE_CEILING (docs/delivery.md says why 50/s).
# CRIER_RATE_LIMIT_SLACK=8,1,10,50 overrides these (the delivery engine reads it).
PER_CONVERSATION = 1.0
WORKSPACE_RATE = 8.0
WORKSPACE_BURST = 10
WORKSPACE_CEILING = 50.0

#: The person or conversation is gone or out of reach: never retried.
UNREACHABLE_ERRORS = frozenset({
    "account_inactive", "user_not_found", "users_not_found", "channel_not_found",
    "user_disabled", "is_archived", "not_in_channel", "cannot_dm_bot", "user_is_bot",
    "messages_tab_disabled", "team_access_not_granted", "is_inactive", "user_is_restricted",
})
#: Slack's own trouble: retried with backoff.
TRANSIENT_ERRORS = frozenset({
    "internal_error", "fatal_error", "service_unavailable", "request_timeout",
    "ratelimited_temporarily",
})
#: ``message_not_found`` on update/delete: the person deleted it; nothing to do.
GONE_ERRORS = frozenset({"message_not_found", "cant_update_message", "cant_delete_message"})


def make_client(settings: Settings, *, retries: bool = True) -> AsyncWebClient:
    """A Web API client on ``SLACK_API_URL``. ``retries=False`` for the delivery engine."""
    if not settings.slack_bot_token:
        raise ValueError("SLACK_BOT_TOKEN is not set")
    base_url = settings.slack_api_url
    if not base_url.endswith("/"):
        base_url += "/"
    handlers: list[Any] = []
    if retries:
        handlers = [AsyncConnectionErrorRetryHandler(),
                    AsyncRateLimitErrorRetryHandler(max_retry_count=2)]
    return AsyncWebClient(token=settings.slack_bot_token, base_url=base_url, timeout=15,
                          retry_handlers=handlers)


def make_ref(channel: str, ts: str) -> str:
    return f"{channel}:{ts}"


def parse_ref(ref: str) -> tuple[str, str]:
    """``"D123:1700000000.000100"`` -> (channel, ts)."""
    channel, sep, ts = ref.partition(":")
    if not sep or not channel or not ts:
        raise PermanentError(f"{ref!r} is not a Slack message reference")
    return channel, ts


def classify(exc: BaseException) -> DeliveryError:
    """A Slack or network failure as the delivery engine's error."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", 200)
        data = response.data if isinstance(getattr(response, "data", None), dict) else {}
        error = str(data.get("error") or f"HTTP {status}")
        if status == 429 or error == "ratelimited":
            headers = getattr(response, "headers", {}) or {}
            raw = headers.get("Retry-After") or headers.get("retry-after") or "0"
            try:
                wait = float(raw)
            except ValueError:
                wait = 0.0  # none named: the engine's default pause
            return RateLimited(wait, f"Slack: {error}")
        if error in UNREACHABLE_ERRORS:
            return Unreachable(f"Slack: {error}")
        if status >= 500 or error in TRANSIENT_ERRORS:
            return TransientError(f"Slack: {error}")
        return PermanentError(f"Slack: {error}")
    if isinstance(exc, BlockKitLimit):
        return PermanentError(str(exc))
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return TransientError(f"Slack unreachable: {type(exc).__name__}: {exc}")
    if isinstance(exc, SlackRequestError | SlackClientError):
        return TransientError(f"Slack: {exc}")
    return PermanentError(f"Slack: {type(exc).__name__}: {exc}")


@dataclass
class SlackPlatform:
    """Sends to Slack users (by user id: their DM with the app) and channels."""

    client: AsyncWebClient
    limits: RateLimits = field(default_factory=lambda: RateLimits(
        WORKSPACE_RATE, PER_CONVERSATION, WORKSPACE_BURST, WORKSPACE_CEILING))
    name: str = "slack"
    identifies_by_email: bool = False
    _session: aiohttp.ClientSession | None = None
    #: Block Kit bodies of recent messages: the engine hands every recipient of an
    #: announcement the same message, so its body is built once, not per send.
    _bodies: dict[int, tuple[OutboundMessage, dict[str, Any]]] = field(default_factory=dict)

    def _body(self, message: OutboundMessage) -> dict[str, Any]:
        known = self._bodies.get(id(message))
        if known is not None and known[0] is message:
            return known[1]
        try:
            body = payload(message)
        except BlockKitLimit as exc:
            raise PermanentError(str(exc)) from exc
        if len(self._bodies) >= 64:
            self._bodies.clear()
        self._bodies[id(message)] = (message, body)
        return body

    async def start(self) -> None:
        """Share one HTTP connection pool between requests (call inside the event loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.client.timeout),
                connector=aiohttp.TCPConnector(limit=64),
            )
            self.client.session = self._session

    async def stop(self) -> None:
        """Close the connection pool ``start`` opened."""
        if self._session is not None:
            await self._session.close()
        self._session = None
        self.client.session = None

    async def aclose(self) -> None:
        """``stop``, under the name ``contextlib.aclosing`` and older callers use."""
        await self.stop()

    async def open_direct(self, account: str) -> str:
        """The app's DM channel with a Slack user (``conversations.open``)."""
        if not account:
            raise Unreachable("no Slack user id")
        data = await self._call("conversations.open", users=account)
        channel = (data.get("channel") or {}).get("id")
        if not channel:
            raise TransientError(f"Slack: conversations.open gave no channel for {account}")
        return str(channel)

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self.client.api_call(method, json=kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an engine error
            raise classify(exc) from exc
        return response.data if isinstance(response.data, dict) else {}

    async def send(self, address: str, message: OutboundMessage) -> str:
        if not address:
            raise Unreachable("no Slack user id")
        data = await self._call("chat.postMessage", channel=address, unfurl_links=False,
                                unfurl_media=False, **self._body(message))
        return make_ref(str(data.get("channel") or address), str(data["ts"]))

    async def update(self, address: str, message_ref: str, message: OutboundMessage) -> None:
        channel, ts = parse_ref(message_ref)
        body = self._body(message)
        try:
            await self._call("chat.update", channel=channel, ts=ts, **body)
        except PermanentError as exc:
            if any(e in str(exc) for e in GONE_ERRORS):
                log.info("Slack message %s is gone; nothing to update", message_ref)
                return
            raise

    async def delete(self, address: str, message_ref: str) -> None:
        channel, ts = parse_ref(message_ref)
        try:
            await self._call("chat.delete", channel=channel, ts=ts)
        except PermanentError as exc:
            if any(e in str(exc) for e in GONE_ERRORS):
                return
            raise

    async def post_report(
        self, channel: str, message: OutboundMessage, attachment: Attachment | None
    ) -> str:
        """The report as a message, then its chart uploaded to the same channel."""
        ref = await self.send(channel, message)
        if attachment is not None:
            try:
                await self.client.files_upload_v2(
                    channel=parse_ref(ref)[0],
                    content=attachment.content,
                    filename=attachment.filename,
                    title=message.title or attachment.filename,
                )
            except Exception as exc:  # noqa: BLE001
                raise classify(exc) from exc
        return ref


def make_platform(settings: Settings) -> SlackPlatform:
    """The Slack platform from ``SLACK_BOT_TOKEN`` and ``SLACK_API_URL``."""
    return SlackPlatform(client=make_client(settings, retries=False))
