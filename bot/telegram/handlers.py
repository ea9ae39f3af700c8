"""Inbound Telegram updates -> the inbound pipeline, through python-telegram-bot's
``Application``.

The application is built without an ``Updater``: the webhook route (or the
long-polling task) hands each update to ``TelegramInbound.process_update``. An
``update_id`` takes effect once: it is recorded in the transaction of its effect
(``storage.events``), so an update whose handler failed is answered "try again",
reported as ``FAILED`` (the webhook answers 500, polling fetches it again) and
takes effect when Telegram delivers it again. A Telegram user who is not linked
to a directory entry can only ``/start`` and link.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import Any

from sqlmodel import col, select
from telegram import BotCommand, Update
from telegram.constants import ChatType
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    PollAnswerHandler,
    filters,
)

from announcements import linking
from announcements.errors import CrierError
from announcements.types import OutboundMessage, Person, Purpose, Reply
from bot import grammar
from bot.app import Runtime
from bot.inbound import TRY_AGAIN, Inbound, refusal
from bot.inbound.pipeline import try_again
from bot.inbound.text import unstorable
from bot.telegram.platform import TelegramPlatform
from bot.telegram.present import Presenter
from storage import events
from storage.events import Pending
from storage.models import Delivery

log = logging.getLogger("crier.telegram")
Context = ContextTypes.DEFAULT_TYPE

PLATFORM = "telegram"
#: Update types Crier asks Telegram for (webhook and long polling alike).
ALLOWED_UPDATES = ("message", "callback_query", "poll_answer")
NOT_LINKED = (
    "I don't know you yet: until your Telegram account is linked to your work entry, "
    "only /start works.\nSend /start to link it."
)
WELCOME = (
    "Hi, I am Crier, your company's announcement bot.\n\n"
    "To link this Telegram account, open the invite link your admin gave you, or send me "
    "your work email address and I will send a one-time code to an account of yours that "
    "is already linked (Slack or Teams)."
)
PRIVATE_ONLY = "Talk to me in a private chat for that: groups only take /crier report subscribe."
DESCRIPTIONS = {
    "start": "Link your Telegram account to your work entry",
    "announce": "Draft an announcement (to: at: ack urgent remind:)",
    "poll": 'Draft a poll: /poll "Question?" "Option" "Option"',
    "remind": "Set up a recurring reminder (to: every:)",
    "crier": "help, status, list, cancel, whoami, optout, preferences, report",
    "unlink": "Unlink this Telegram account",
}
#: The chat commands are the grammar's; /start and /unlink are Telegram's own.
COMMANDS = ("start", *grammar.USAGE, "unlink")


def command_line(text: str) -> str:
    """``/announce@crier_bot to:all Hi`` -> ``/announce to:all Hi``."""
    head, sep, rest = text.strip().partition(" ")
    return head.split("@", 1)[0] + sep + rest


class Handled(StrEnum):
    DONE = "done"
    DUPLICATE = "duplicate"  # the update took effect before
    FAILED = "failed"  # nothing recorded: Telegram should deliver it again


def poll_announcement(runtime: Runtime, poll_id: str) -> int | None:
    """The announcement a native poll belongs to, from its delivery rows."""
    with runtime.db.session() as s:
        return s.execute(
            select(Delivery.announcement_id).where(
                Delivery.platform == PLATFORM, Delivery.purpose == Purpose.ANNOUNCEMENT.value,
                col(Delivery.message_ref).endswith(f":{poll_id}", autoescape=True),
            ).limit(1)
        ).scalar_one_or_none()


class TelegramInbound:
    """Everything a Telegram user can do, on top of the inbound pipeline."""

    def __init__(self, runtime: Runtime, platform: TelegramPlatform) -> None:
        self.runtime = runtime
        self.platform = platform
        self.present = Presenter(platform)
        self.pipeline = runtime.router
        self._failed: set[int] = set()
        self.pipeline.strangers[PLATFORM] = NOT_LINKED
        self.app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder().bot(platform.bot).updater(None).job_queue(None).build()
        )
        self._ready = False
        self._lock = asyncio.Lock()
        message = filters.UpdateType.MESSAGE
        self.app.add_handler(CommandHandler("start", self.on_start, filters=message))
        self.app.add_handler(CommandHandler("unlink", self.on_unlink, filters=message))
        self.app.add_handler(MessageHandler(filters.COMMAND & message, self.on_command))
        self.app.add_handler(CallbackQueryHandler(self.on_button))
        self.app.add_handler(PollAnswerHandler(self.on_poll_answer))
        self.app.add_handler(MessageHandler(
            filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE & message, self.on_text))
        self.app.add_error_handler(self.on_error)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Initialise the bot (getMe) and register the command list, once."""
        async with self._lock:
            if self._ready:
                return
            await self.platform.start()
            await self.app.initialize()
            await self.app.bot.set_my_commands(
                [BotCommand(c, DESCRIPTIONS[c]) for c in COMMANDS])
            self._ready = True

    async def stop(self) -> None:
        async with self._lock:
            if self._ready:
                await self.app.shutdown()
                self._ready = False
        await self.platform.stop()

    async def process(self, data: dict[str, Any]) -> Handled:
        """Handle one update (webhook JSON)."""
        await self.start()
        update = Update.de_json(data, self.app.bot)
        return await self.process_update(update)

    async def process_update(self, update: Update) -> Handled:
        await self.start()
        key = Pending(PLATFORM, (_key(update.update_id),), self.runtime.crier.clock.now())
        if await self.pipeline.run(events.seen, self.runtime.db, key):
            log.info("telegram update %s was already processed", update.update_id)
            return Handled.DUPLICATE
        await self.app.process_update(update)
        if update.update_id in self._failed:
            self._failed.discard(update.update_id)
            return Handled.FAILED
        # An update that wrote nothing (a read-only command) is recorded now.
        await self.pipeline.run(events.record, self.runtime.db, key)
        return Handled.DONE

    # -- helpers ----------------------------------------------------------------------

    def _inbound(self, update: Update, user_id: int, chat_id: int | None = None,
                 keys: tuple[str, ...] = ()) -> Inbound:
        return Inbound(PLATFORM, str(user_id), (_key(update.update_id), *keys),
                       str(chat_id) if chat_id is not None else None)

    def _check(self, update: Update, reply: Reply | None) -> Reply | None:
        """Note a failed handler, so the update is reported ``FAILED``."""
        if reply is not None and reply.error is not None and reply.error.code == TRY_AGAIN:
            self._failed.add(update.update_id)
        return reply

    async def _person(self, user_id: int) -> Person | None:
        return await self.pipeline.identify(PLATFORM, str(user_id))

    async def _say(self, chat_id: int, text: str) -> None:
        await self.present.say(chat_id, OutboundMessage(text=text))

    async def _show(self, chat_id: int, reply: Reply | None) -> None:
        await self.present.show(chat_id, reply)

    async def _link(self, update: Update, chat_id: int, fn: Any, *args: Any) -> Any:
        """A linking step (a write) for this update: (result,), None for a duplicate, or
        the refusal already told to the person."""
        try:
            return await self.pipeline.effect(self._inbound(update, chat_id), fn, *args)
        except CrierError as exc:
            await self._show(chat_id, refusal(exc))
        except Exception:  # noqa: BLE001 - the person hears back whatever broke
            log.exception("telegram linking failed for update %s", update.update_id)
            await self._show(chat_id, self._check(update, try_again()))
        return False

    # -- handlers ---------------------------------------------------------------------

    async def on_start(self, update: Update, context: Context) -> None:
        user, chat = update.effective_user, update.effective_chat
        if user is None or chat is None:
            return
        if chat.type != ChatType.PRIVATE:
            await self._say(chat.id, f"Open a private chat with me to link: "
                                     f"https://t.me/{self.platform.username}")
            return
        if context.args:
            await self._linking_text(update, user.id, chat.id, context.args[0], code=True)
            return
        person = await self._person(user.id)
        if person is not None:
            await self._say(chat.id, f"You are linked as {person.name} <{person.email}>.\n"
                                     "Type /crier help to see what you can do.")
        else:
            await self._say(chat.id, WELCOME)

    async def on_unlink(self, update: Update, context: Context) -> None:
        user, chat = update.effective_user, update.effective_chat
        if user is None or chat is None:
            return
        crier = self.runtime.crier
        done = await self._link(update, chat.id, linking.unlink, crier.db, crier.clock,
                                PLATFORM, str(user.id))
        if not done:
            return
        person = done[0]
        if person is None:
            await self._say(chat.id, "This Telegram account is not linked. /start links it.")
        else:
            await self._say(chat.id, f"Unlinked: this Telegram account no longer gets Crier "
                                     f"messages for {person.email}. /start links it again.")

    async def on_command(self, update: Update, context: Context) -> None:
        user, chat, message = update.effective_user, update.effective_chat, update.message
        if user is None or chat is None or message is None or not message.text:
            return
        line = command_line(message.text)
        if chat.type != ChatType.PRIVATE and not _is_report_command(line):
            await self._say(chat.id, PRIVATE_ONLY)
            return
        reply = await self.pipeline.text(self._inbound(update, user.id, chat.id), line)
        await self._show(chat.id, self._check(update, reply))

    async def on_text(self, update: Update, context: Context) -> None:
        """Plain text in a private chat: the email or the code while linking."""
        user, chat, message = update.effective_user, update.effective_chat, update.message
        if user is None or chat is None or message is None or not message.text:
            return
        if await self._person(user.id) is not None:
            await self._say(chat.id, "Commands start with a slash: type /crier help.")
        else:
            await self._linking_text(update, user.id, chat.id, message.text.strip())

    async def _linking_text(self, update: Update, user_id: int, chat_id: int,
                            text: str, code: bool = False) -> None:
        """An email or a code (``code``: after /start) from someone not linked yet."""
        bad = unstorable(text, "Your message")
        if bad is not None:
            await self._show(chat_id, refusal(bad))
        elif code:
            await self._redeem(update, user_id, chat_id, text)
        elif linking.EMAIL.fullmatch(text):
            await self._request_code(update, user_id, chat_id, text)
        elif linking.VERIFY_CODE.fullmatch(text) or linking.INVITE_CODE.fullmatch(text):
            await self._redeem(update, user_id, chat_id, text)
        else:
            await self._say(chat_id, NOT_LINKED)

    async def on_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None or query.data is None:
            return
        user_id = query.from_user.id
        shown = query.message if query.message is not None and query.message.is_accessible \
            else None
        ref = f"{shown.chat.id}:{shown.message_id}" if shown is not None else None
        # Each press is its own update, answered on its own (a spinner shows until then):
        # a second press meets the domain's own idempotency ("already acknowledged").
        inbound = Inbound(PLATFORM, str(user_id), (_key(update.update_id),), message_ref=ref)
        reply = self._check(update, await self.pipeline.press(inbound, query.data))
        await self.present.clicked(query, shown, reply)

    async def on_poll_answer(self, update: Update, context: Context) -> None:
        """A vote on a native poll: the whole current choice; no options = retracted."""
        answer = update.poll_answer
        if answer is None or answer.user is None:
            return  # answered on behalf of a chat: not a person Crier knows
        ann_id = self.platform.polls.get(answer.poll_id) or await self.pipeline.run(
            poll_announcement, self.runtime, answer.poll_id)
        if ann_id is None:
            log.info("poll_answer for unknown poll %s", answer.poll_id)
            return
        positions = [i + 1 for i in answer.option_ids]
        reply = self._check(update, await self.pipeline.answer(
            self._inbound(update, answer.user.id, answer.user.id), ann_id, positions))
        if reply is not None and reply.error is not None:
            await self._show(answer.user.id, reply)  # a vote that counted needs no answer

    async def on_error(self, update: object, context: Context) -> None:
        log.error("telegram update failed: %r", context.error, exc_info=context.error)

    # -- linking ------------------------------------------------------------------------

    async def _request_code(self, update: Update, user_id: int, chat_id: int,
                            email: str) -> None:
        rt = self.runtime
        trusted = tuple(n for n, p in rt.platforms.items()
                        if n != PLATFORM and not p.identifies_by_email)
        done = await self._link(update, chat_id, linking.request_code, rt.db, rt.crier.clock,
                                PLATFORM, str(user_id), email, trusted)
        if not done:
            return
        request = done[0]
        sent_on: list[str] = []
        for platform, address in request.channels if request else ():
            note = OutboundMessage(
                title="Your Crier code for Telegram",
                text=f"Someone asked to link a Telegram account to your Crier entry. If it "
                     f"was you, send this code to the bot in Telegram: *{request.code}* "  # type: ignore[union-attr]
                     f"(valid {linking.VERIFY_TTL.seconds // 60} minutes).\n\n"
                     "If it was not you, ignore this message: nothing is linked without it.")
            try:
                await rt.platforms[platform].send(address, note)
                sent_on.append(platform.capitalize())
            except Exception as exc:  # noqa: BLE001 - one failed channel must not stop the rest
                log.warning("could not send a link code on %s: %s", platform, exc)
        if sent_on:
            await self._say(chat_id, f"I sent a 6-digit code to your {' and '.join(sent_on)} "
                                     "account. Type it here to finish linking.")
        else:
            # The same answer whether or not the email is known: no directory lookups for
            # strangers.
            await self._say(chat_id, (
                f"I cannot send a code for {email}: it is not in the directory, or it is not "
                "linked to Slack or Teams. Check the address, or ask your comms team or IT "
                "for a Telegram invite link (`crier telegram invite EMAIL`)."))

    async def _redeem(self, update: Update, user_id: int, chat_id: int, code: str) -> None:
        crier = self.runtime.crier
        done = await self._link(update, chat_id, linking.redeem, crier.db, crier.clock,
                                PLATFORM, str(user_id), str(chat_id), code)
        if not done:
            return
        linked = done[0]
        who = f"{linked.person.name} <{linked.person.email}>"
        if linked.already:
            text = f"This account was already linked to {who}."
        else:
            text = (f"✓ Linked: this Telegram account is now {who}. Announcements reach you "
                    "here. /crier whoami shows the link; /unlink removes it.")
            if linked.replaced:
                text += "\nYour previously linked Telegram account no longer gets messages."
        await self._say(chat_id, text)

def _key(update_id: int) -> str:
    return f"update:{update_id}"


def _is_report_command(line: str) -> bool:
    words = line.lower().split()
    return words[:2] == ["/crier", "report"] and len(words) >= 3 and words[2] in (
        "subscribe", "unsubscribe")
