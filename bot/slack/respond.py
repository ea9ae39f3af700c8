"""Showing a ``Reply`` in Slack: where the person spoke or clicked, and how.

``Reply.update`` replaces the clicked message: ``chat.update`` for a normal
message, ``response_url`` with ``replace_original`` for an ephemeral one (which
``chat.update`` cannot reach). ``Reply.message`` is shown only to the person:
ephemeral through ``response_url`` where Slack gave one, else
``chat.postEphemeral`` in the channel, else a small modal (App Home clicks), and
as a last resort a direct message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from announcements.types import OutboundMessage, Reply
from bot.inbound import showing
from bot.slack.blocks import BlockKitLimit, context, payload
from bot.slack.modal import notice_view
from bot.slack.platform import make_ref

log = logging.getLogger("crier.slack")


@dataclass(frozen=True)
class Where:
    """Where a person spoke or clicked, as far as Slack told us."""

    user: str
    channel: str | None = None
    ts: str | None = None
    response_url: str | None = None
    ephemeral: bool = False
    home: bool = False
    trigger_id: str | None = None

    @property
    def clicked(self) -> bool:
        """A button on a message (or the App Home) was pressed, rather than text typed."""
        return bool(self.ts) or self.home

    @property
    def message_ref(self) -> str | None:
        """The clicked message as the outbox stores it (``channel:ts``)."""
        if self.channel and self.ts and not self.ephemeral:
            return make_ref(self.channel, self.ts)
        return None

    @classmethod
    def of_command(cls, body: dict[str, Any]) -> Where:
        return cls(user=body["user_id"], channel=body.get("channel_id"),
                   response_url=body.get("response_url"), trigger_id=body.get("trigger_id"))

    @classmethod
    def of_action(cls, body: dict[str, Any]) -> Where:
        container = body.get("container") or {}
        view = body.get("view") or {}
        return cls(
            user=body["user"]["id"],
            channel=container.get("channel_id") or (body.get("channel") or {}).get("id"),
            ts=container.get("message_ts"),
            response_url=body.get("response_url"),
            ephemeral=bool(container.get("is_ephemeral")),
            home=container.get("type") == "view" and view.get("type") == "home",
            trigger_id=body.get("trigger_id"),
        )

    def to_meta(self) -> dict[str, Any]:
        return {"c": self.channel, "t": self.ts, "r": self.response_url,
                "e": self.ephemeral or None, "h": self.home or None}

    @classmethod
    def of_meta(cls, user: str, meta: dict[str, Any]) -> Where:
        return cls(user=user, channel=meta.get("c"), ts=meta.get("t"),
                   response_url=meta.get("r"), ephemeral=bool(meta.get("e")),
                   home=bool(meta.get("h")))


def _body(message: OutboundMessage) -> dict[str, Any]:
    """Block Kit for a reply; one too long for Block Kit is said in words instead."""
    try:
        return payload(message)
    except BlockKitLimit as exc:
        text = f"✗ This answer is too long to show in Slack ({exc})."
        return {"text": text, "blocks": context(text)}


class Responder:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.session: aiohttp.ClientSession | None = None

    async def answer(self, where: Where, reply: Reply | None) -> None:
        """Show ``reply`` (``bot.inbound.present``); None (a duplicate) shows nothing."""
        if reply is None:
            return
        shown = showing(reply, where.clicked)
        if shown.replace is not None:
            await self.replace(where, shown.replace)
        for message in shown.say:
            await self.tell(where, message)

    async def replace(self, where: Where, message: OutboundMessage) -> None:
        """Put ``message`` in place of the clicked one (the App Home is republished instead)."""
        if where.home:
            return
        body = _body(message)
        if where.ephemeral and where.response_url and await self._hook(
                where.response_url, {"replace_original": True, **body}):
            return
        if where.channel and where.ts and not where.ephemeral:
            try:
                await self.client.chat_update(channel=where.channel, ts=where.ts, **body)
            except SlackApiError as exc:
                log.warning("cannot update Slack message %s/%s: %s", where.channel, where.ts,
                            exc.response.get("error"))

    async def tell(self, where: Where, message: OutboundMessage) -> None:
        """Show ``message`` to this person only."""
        body = _body(message)
        if where.response_url and await self._hook(
                where.response_url,
                {"response_type": "ephemeral", "replace_original": False, **body}):
            return
        try:
            if where.home and where.trigger_id:
                await self.client.views_open(trigger_id=where.trigger_id,
                                             view=notice_view(message))
                return
            if where.channel and not where.home:
                await self.client.chat_postEphemeral(channel=where.channel, user=where.user,
                                                     **body)
                return
        except SlackApiError as exc:
            log.info("ephemeral answer failed (%s); sending it as a direct message",
                     exc.response.get("error"))
        await self.direct(where.user, message)

    async def direct(self, user: str, message: OutboundMessage) -> None:
        try:
            await self.client.chat_postMessage(channel=user, **_body(message))
        except SlackApiError as exc:
            log.warning("cannot message Slack user %s: %s", user, exc.response.get("error"))

    async def _hook(self, url: str, body: dict[str, Any]) -> bool:
        """POST to a ``response_url``; False when Slack no longer takes it (expired)."""
        try:
            response = await AsyncWebhookClient(url, session=self.session).send_dict(body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("response_url failed: %s", exc)
            return False
        if response.status_code != 200:
            log.info("response_url answered %s %s", response.status_code, response.body)
            return False
        return True
