"""Showing a ``Reply`` in Telegram (``bot.inbound.present``): messages in the chat,
edits of the clicked message, and the one answer every callback query gets."""

from __future__ import annotations

import logging

from telegram import CallbackQuery, MaybeInaccessibleMessage
from telegram.error import TelegramError

from announcements.types import OutboundMessage, Reply, Verb, parse_action
from bot.inbound import showing
from bot.telegram import render
from bot.telegram.platform import TelegramPlatform

log = logging.getLogger("crier.telegram")


class Presenter:
    def __init__(self, platform: TelegramPlatform) -> None:
        self.platform = platform

    async def say(self, chat_id: int, message: OutboundMessage) -> None:
        await self.platform.say(chat_id, message)

    async def show(self, chat_id: int, reply: Reply | None) -> None:
        """The answer to something typed (None, a duplicate: nothing)."""
        if reply is None:
            return
        for message in showing(reply, clicked=False).say:
            await self.platform.say(chat_id, message)

    async def clicked(self, query: CallbackQuery, shown: MaybeInaccessibleMessage | None,
                      reply: Reply | None) -> None:
        """The answer to a button press on ``shown`` (None: a message Telegram hides)."""
        if reply is None:
            await query.answer()  # a double click: the first one answered
            return
        show = showing(reply, clicked=shown is not None)
        if show.replace is not None and shown is not None and query.data is not None:
            await self._replace(shown.chat.id, shown.message_id, show.replace, query.data)
        await self._answer(query, reply, show.say, show.toast)

    async def _replace(self, chat_id: int, message_id: int, message: OutboundMessage,
                       action: str) -> None:
        """Show what the click changed in the clicked message (the last part of a long
        one). A Got it button becomes "✓ Acknowledged"."""
        rendered = render.render(message)
        markup = rendered.markup
        parsed = parse_action(action)
        if markup is None and parsed is not None and parsed.verb == Verb.ACK:
            markup = render.acknowledged_keyboard(action)
        try:
            await self.platform.edit(chat_id, message_id, rendered.chunks[-1], markup)
        except Exception as exc:  # noqa: BLE001 - the action itself succeeded
            log.warning("could not update message %s:%s: %s", chat_id, message_id, exc)

    async def _answer(self, query: CallbackQuery, reply: Reply,
                      said: tuple[OutboundMessage, ...], toast: str | None) -> None:
        """Answer the callback query once: a toast (an alert for a refusal) where the
        answer is short, and the rest as messages in the chat."""
        refused = reply.error is not None
        first = said[0] if said else None
        short = render.toast(toast) if toast is not None else None
        if first is not None and short is None:
            short = None if first.title else render.toast(first.text)
            if short is None and refused and len(first.text) <= render.TOAST_CHARS:
                short = first.text  # an alert shows several lines
            if short is not None:
                said = said[1:]
        chat = query.message.chat.id if query.message is not None else query.from_user.id
        try:
            await query.answer(short, show_alert=refused)
        except TelegramError as exc:  # answered before (a redelivered update): say it instead
            log.info("callback query %s not answered: %s", query.id, exc)
            if short is not None:
                said = (OutboundMessage(text=short), *said)
        for message in said:
            await self.platform.say(chat, message)
