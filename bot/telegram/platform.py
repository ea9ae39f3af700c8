"""Telegram as a ``ChatPlatform``: python-telegram-bot's ``Bot`` pointed at
``TELEGRAM_API_URL``, with Telegram's refusals mapped to what the delivery
engine understands.

A message reference is ``CHAT:ID[,ID...][:POLL_ID]``: every message id a send
produced (long text is split; a poll has a header line and the poll), and the
native poll's id, so a ``poll_answer`` can be traced back to its announcement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from telegram import Bot, InputFile, Message
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

from announcements.ports import (
    Attachment,
    PermanentError,
    RateLimited,
    RateLimits,
    TransientError,
    Unreachable,
)
from announcements.types import OutboundMessage
from bot.settings import Settings
from bot.telegram import render

log = logging.getLogger("crier.telegram")
T = TypeVar("T")

#: Telegram's Bot FAQ ("My bot is hitting limits, how do I avoid this?",
#: https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
#: avoid more than one message per second in one chat, and bulk notifications
#: go out at no more than about 30 messages per second. Groups also allow only
#: 20 messages a minute; Crier posts at most a weekly report there.
TELEGRAM_LIMITS = RateLimits(per_second=30.0, per_conversation=1.0, burst=1)
#: 400 descriptions that mean the person cannot be reached at all.
_GONE = ("chat not found", "user not found", "peer_id_invalid", "user is deactivated",
         "bot was kicked", "have no rights to send")


@dataclass(frozen=True)
class MessageRef:
    chat_id: int | str
    message_ids: tuple[int, ...]
    poll_id: str | None = None

    def __str__(self) -> str:
        ref = f"{self.chat_id}:{','.join(map(str, self.message_ids))}"
        return f"{ref}:{self.poll_id}" if self.poll_id else ref

    @classmethod
    def parse(cls, ref: str) -> MessageRef:
        parts = ref.split(":")
        if len(parts) not in (2, 3):
            raise PermanentError(f"not a Telegram message reference: {ref!r}")
        chat, ids, poll = parts[0], parts[1], parts[2:]
        try:
            message_ids = tuple(int(i) for i in ids.split(",") if i)
        except ValueError:
            raise PermanentError(f"not a Telegram message reference: {ref!r}") from None
        if not message_ids:
            raise PermanentError(f"not a Telegram message reference: {ref!r}")
        return cls(_chat(chat), message_ids, poll[0] if poll else None)


def _chat(raw: str) -> int | str:
    """A chat id (``1001``, ``-100123``) or a channel username (``@news``)."""
    raw = raw.strip()
    return int(raw) if raw.lstrip("-").isdigit() else raw


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def call(request: Awaitable[T]) -> T:
    """Run one Bot API request; translate Telegram's errors into delivery errors."""
    try:
        return await request
    except RetryAfter as exc:
        raise RateLimited(retry_seconds(exc), "Telegram flood control") from exc
    except Forbidden as exc:  # blocked by the user, user deactivated, kicked from a group
        raise Unreachable(f"Telegram: {exc.message}") from exc
    except BadRequest as exc:
        if any(gone in exc.message.lower() for gone in _GONE):
            raise Unreachable(f"Telegram: {exc.message}") from exc
        raise PermanentError(f"Telegram: {exc.message}") from exc
    except ChatMigrated as exc:
        raise PermanentError(f"Telegram: the group is now chat {exc.new_chat_id}") from exc
    except (InvalidToken, NetworkError) as exc:  # TimedOut is a NetworkError
        raise TransientError(f"Telegram: {exc.message}") from exc
    except TelegramError as exc:
        raise TransientError(f"Telegram: {exc.message}") from exc


def _unchanged(exc: PermanentError) -> bool:
    return "not modified" in str(exc)


@dataclass
class TelegramPlatform:
    bot: Bot
    name: str = "telegram"
    identifies_by_email: bool = False
    limits: RateLimits = TELEGRAM_LIMITS
    #: poll id -> announcement id, for the polls this process sent (the rest are
    #: found through the delivery rows' message_ref).
    polls: dict[str, int] = field(default_factory=dict)
    _started: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def start(self) -> None:
        """Initialise the HTTP clients and learn the bot's username (getMe), once."""
        async with self._lock:
            if not self._started:
                await call(self.bot.initialize())
                self._started = True

    async def stop(self) -> None:
        """Close the HTTP clients ``start`` opened."""
        async with self._lock:
            if self._started:
                await self.bot.shutdown()
                self._started = False

    @property
    def username(self) -> str:
        return self.bot.username

    # -- ChatPlatform ------------------------------------------------------------

    async def open_direct(self, account: str) -> str:
        """A private chat's id is the user's id; the person opened it by linking."""
        chat = _chat(account)
        if not isinstance(chat, int) or chat <= 0:
            raise Unreachable(f"Telegram: {account!r} is not a user id")
        return str(chat)

    async def send(self, address: str, message: OutboundMessage) -> str:
        await self.start()
        chat = _chat(address)
        if message.poll is not None:
            return str(await self._send_poll(chat, message))
        rendered = render.render(message)
        return str(MessageRef(chat, await self._send_chunks(chat, rendered)))

    async def update(self, address: str, message_ref: str, message: OutboundMessage) -> None:
        await self.start()
        ref = MessageRef.parse(message_ref)
        if message.poll is not None:
            # Telegram keeps a native poll's counts itself; only closing changes anything.
            if message.poll.closed and ref.poll_id:
                await self._stop_poll(ref)
                intro = render.poll_intro(message)
                if intro and len(ref.message_ids) > 1:
                    await self.edit(ref.chat_id, ref.message_ids[0], intro)
            return
        rendered = render.render(message)
        chunks = list(rendered.chunks)
        if len(chunks) > len(ref.message_ids):
            log.warning("edited message %s grew to %d parts; the middle ones are not shown",
                        message_ref, len(chunks))
            chunks = chunks[: len(ref.message_ids) - 1] + chunks[-1:]
        for i, (message_id, chunk) in enumerate(zip(ref.message_ids, chunks, strict=False)):
            last = i == len(chunks) - 1
            await self.edit(ref.chat_id, message_id, chunk, rendered.markup if last else None)
        for message_id in ref.message_ids[len(chunks):]:
            await self._delete_one(ref.chat_id, message_id)

    async def delete(self, address: str, message_ref: str) -> None:
        await self.start()
        ref = MessageRef.parse(message_ref)
        for message_id in ref.message_ids:
            await self._delete_one(ref.chat_id, message_id)

    async def post_report(
        self, channel: str, message: OutboundMessage, attachment: Attachment | None
    ) -> str:
        """The weekly report in a group or channel: the chart with a caption, then any
        text that did not fit the caption."""
        await self.start()
        chat = _chat(channel)
        if attachment is None:
            return await self.send(channel, message)
        head, rest = render.caption(message)
        sent = await call(self.bot.send_photo(
            chat, photo=InputFile(attachment.content, filename=attachment.filename),
            caption=head, parse_mode=ParseMode.HTML))
        ids = [sent.message_id]
        if rest:
            ids += await self._send_chunks(chat, render.Rendered(rest, None))
        return str(MessageRef(chat, tuple(ids)))

    # -- helpers the handlers use too -------------------------------------------

    async def edit(self, chat: int | str, message_id: int, html: str,
                   markup: Any = None) -> None:
        """Replace a message's text and keyboard; "not modified" counts as done."""
        try:
            await call(self.bot.edit_message_text(
                html, chat_id=chat, message_id=message_id, parse_mode=ParseMode.HTML,
                reply_markup=markup))
        except PermanentError as exc:
            if not _unchanged(exc):
                raise

    async def say(self, chat: int | str, message: OutboundMessage) -> str:
        """Send a reply right away (not through the outbox): command answers, previews."""
        return await self.send(str(chat), message)

    # -- internals ------------------------------------------------------------------

    async def _send_chunks(self, chat: int | str, rendered: render.Rendered) -> tuple[int, ...]:
        sent: list[int] = []
        try:
            for i, chunk in enumerate(rendered.chunks):
                last = i == len(rendered.chunks) - 1
                msg: Message = await call(self.bot.send_message(
                    chat, chunk, parse_mode=ParseMode.HTML,
                    reply_markup=rendered.markup if last else None))
                sent.append(msg.message_id)
        except Exception:
            await self._undo(chat, sent)  # the retry sends every part again
            raise
        return tuple(sent)

    async def _send_poll(self, chat: int | str, message: OutboundMessage) -> MessageRef:
        assert message.poll is not None
        poll = message.poll
        ids: list[int] = []
        intro = render.poll_intro(message)
        if intro:
            ids.append((await call(self.bot.send_message(
                chat, intro, parse_mode=ParseMode.HTML))).message_id)
        try:
            # Non-anonymous at the Telegram level, or no poll_answer updates arrive;
            # Crier's own `anonymous` flag decides what its reports reveal.
            sent = await call(self.bot.send_poll(
                chat, poll.question, [c.label for c in poll.choices], is_anonymous=False,
                allows_multiple_answers=poll.multi, is_closed=poll.closed or None))
        except Exception:
            await self._undo(chat, ids)
            raise
        assert sent.poll is not None
        ids.append(sent.message_id)
        if message.announcement_id is not None:
            self.polls[sent.poll.id] = message.announcement_id
        return MessageRef(chat, tuple(ids), sent.poll.id)

    async def _stop_poll(self, ref: MessageRef) -> None:
        try:
            await call(self.bot.stop_poll(ref.chat_id, ref.message_ids[-1]))
        except PermanentError as exc:
            if "already been closed" not in str(exc):
                raise

    async def _delete_one(self, chat: int | str, message_id: int) -> None:
        try:
            await call(self.bot.delete_message(chat, message_id))
        except PermanentError as exc:
            text = str(exc)
            if "not found" in text:
                return
            if "can't be deleted" in text:  # older than 48 hours in a private chat
                await self.edit(chat, message_id,
                                "<i>This message was withdrawn by its sender.</i>")
                return
            raise

    async def _undo(self, chat: int | str, message_ids: list[int]) -> None:
        for message_id in message_ids:
            with contextlib.suppress(Exception):
                await self.bot.delete_message(chat, message_id)


def file_url(api_url: str) -> str:
    """``https://api.telegram.org/bot`` -> ``https://api.telegram.org/file/bot``."""
    base = api_url.rstrip("/")
    head, _, tail = base.rpartition("/")
    return f"{head}/file/{tail}" if head else base


def make_bot(settings: Settings) -> Bot:
    """A Bot for a server: a pool sized for the delivery workers, timeouts that fail a
    stuck request well within the engine's send timeout, and a separate client for
    long polling (its read timeout grows with the poll's)."""
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    request = HTTPXRequest(connection_pool_size=64, connect_timeout=5.0, read_timeout=15.0,
                           write_timeout=15.0, pool_timeout=10.0, media_write_timeout=30.0)
    polling = HTTPXRequest(connection_pool_size=2, connect_timeout=5.0, read_timeout=10.0,
                           write_timeout=10.0, pool_timeout=5.0)
    return Bot(settings.telegram_bot_token, base_url=settings.telegram_api_url,
               base_file_url=file_url(settings.telegram_api_url), request=request,
               get_updates_request=polling)


def make_platform(settings: Settings) -> TelegramPlatform:
    return TelegramPlatform(make_bot(settings))
