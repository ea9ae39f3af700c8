"""The console chat loop: reads lines, so it can be scripted.

    /...         a command of the current user
    as EMAIL     switch user
    inbox        what the current user has received
    click ID     press a button (``click reject:12 Needs a date`` adds a reason)
    help, quit

Rules, each enforced here:
- Delivery runs after every line and, while the console waits for input, every
  ``tick`` seconds: a scheduled message reaches the inbox on time, and what
  reaches the current user is shown as it arrives.
- The inbox is read from the database (``bot.console.inbox``): it survives a restart.
- Switching user says how many messages they have; ``inbox`` shows them (once).
- Piped input is echoed after a ``name>`` prompt, so a transcript reads like a chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import BinaryIO, TextIO

from announcements.delivery import DeliveryEngine
from announcements.types import OutboundMessage, Reply
from bot.console import inbox
from bot.console.platform import ConsolePlatform, InboxItem
from bot.console.render import buttons_of, render
from bot.inbound import NOT_IN_DIRECTORY, Inbound, Pipeline, showing
from bot.inbound.text import decoded, unstorable
from bot.scheduling import SchedulerService

PLATFORM = inbox.PLATFORM

CONSOLE_HELP = """Console: type a command as you would in chat, e.g.
  /announce to:Engineering ack Please read the new on-call policy
  /crier help
Other lines:  as EMAIL  (switch user) · inbox · click ID [reason] · quit"""


class ConsoleSession:
    def __init__(
        self,
        router: Pipeline,
        platform: ConsolePlatform,
        engine: DeliveryEngine,
        user: str,
        out: TextIO | None = None,
        scheduler: SchedulerService | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.router = router
        self.platform = platform
        self.engine = engine
        self.user = user.lower()
        self.out = out or sys.stdout
        #: Delivery ids each person has been shown in this session.
        self._shown: dict[str, set[int]] = {}
        self._posts: dict[str, int] = {}  # channel -> reports shown
        #: Interactive replies (previews) the person may click; not part of any inbox.
        self._previews: dict[str, list[InboxItem]] = {}
        self._turn = asyncio.Lock()
        self._at_prompt = False
        self._started = False

    @property
    def prompt(self) -> str:
        return f"{self.user.partition('@')[0]}> "

    def say(self, text: str) -> None:
        if self._at_prompt:  # something arrived while the person was typing
            print(file=self.out)
            self._at_prompt = False
        print(text, file=self.out, flush=True)

    def _prompt(self) -> None:
        print(self.prompt, end="", file=self.out, flush=True)
        self._at_prompt = True

    async def start(self) -> None:
        """Continue the message numbers stored; what is already in the inbox is not new.
        Runs once, before the first line."""
        if self._started:
            return
        self._started = True
        last = await self.router.run(inbox.last_ref, self.router.crier.db)
        self.platform.resume_after(last)
        self._shown[self.user] = {x.delivery_id for x in await self._letters()}

    async def run(self, lines: Iterable[str | bytes], prompt: bool = False) -> None:
        """Handle ``lines`` one after the other (a script; tests)."""
        await self.start()
        for raw in lines:
            if not await self.handle(raw):
                break
            if prompt:
                self._prompt()

    async def serve(self, stream: BinaryIO, interactive: bool, tick: float = 1.0) -> None:
        """Read ``stream`` until EOF or ``quit``, delivering every ``tick`` seconds meanwhile.
        Interactive: a prompt before each line; piped: each line echoed after the prompt."""
        await self.start()
        lines: asyncio.Queue[bytes] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def read() -> None:  # a daemon thread: a blocked read never holds the exit up
            try:
                for raw in _lines(stream):
                    loop.call_soon_threadsafe(lines.put_nowait, raw)
                loop.call_soon_threadsafe(lines.put_nowait, b"")
            except RuntimeError:  # the loop closed first (quit, Ctrl-C)
                return

        threading.Thread(target=read, name="console-stdin", daemon=True).start()
        ticker = asyncio.create_task(self._tick(tick))
        try:
            while True:
                if interactive:
                    self._prompt()
                raw = await lines.get()
                self._at_prompt = False
                if not raw:
                    break
                text = decoded(raw).rstrip("\r\n")
                if not interactive and text.strip():
                    self.say(f"{self.prompt}{text}")
                if not await self.handle(raw):
                    break
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _tick(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            prompted = self._at_prompt
            async with self._turn:
                await self._deliver()
            if prompted and not self._at_prompt:
                self._prompt()  # output interrupted the prompt: show it again

    async def handle(self, raw: str | bytes) -> bool:
        """Process one line; False means quit. Bytes that are not UTF-8 read as �."""
        async with self._turn:
            return await self._handle(decoded(raw).strip())

    async def _handle(self, line: str) -> bool:
        if not line or line.startswith("#"):
            return True
        word, _, rest = line.partition(" ")
        word = word.lower()
        if word in ("quit", "exit"):
            return False
        if word == "help":
            self.say(CONSOLE_HELP)
        elif word == "as":
            await self._switch(rest.strip())
        elif word == "inbox":
            await self._show_inbox()
        elif word == "click":
            await self._click(rest)
        elif line.startswith("/"):
            reply = await self.router.text(self._inbound(), line)
            await self._show_reply(reply)
        else:
            self.say(f"✗ `{word}` is not a console command. Type `help`.")
        await self._deliver()
        return True

    async def _switch(self, email: str) -> None:
        if not email:
            self.say("✗ `as` needs an email, e.g. `as avery.approver@example.com`")
            return
        bad = unstorable(email, "The email")
        if bad is not None:
            self.say(f"✗ {bad}")
            return
        person = await self.router.identify(PLATFORM, email)
        if person is None:
            self.say(f"✗ {email}: {NOT_IN_DIRECTORY}")
            return
        self.user = person.email
        await self._deliver(show=False)
        have = await self._letters()
        self._shown[self.user] = {x.delivery_id for x in have}
        count = f"{len(have)} message{'s' if len(have) != 1 else ''} in your inbox " \
                "(type `inbox`)" if have else "Your inbox is empty"
        self.say(f"You are now {person.name} <{person.email}> ({person.department}). {count}.")

    async def _click(self, rest: str) -> None:
        action, _, value = rest.strip().partition(" ")
        if not action:
            self.say("✗ `click` needs a button ID, e.g. `click ack:12`. Type `inbox` to see them.")
            return
        ref = await self._holding(action)
        reply = await self.router.press(self._inbound(ref), action, value.strip() or None)
        await self._show_reply(reply, ref)

    def _inbound(self, ref: str | None = None) -> Inbound:
        return Inbound(PLATFORM, self.user, channel=PLATFORM, message_ref=ref)

    async def _letters(self) -> list[inbox.Letter]:
        crier = self.router.crier
        return await self.router.run(inbox.letters, crier.db, self.user, crier.clock.now())

    async def _holding(self, action: str) -> str | None:
        """The reference of the newest message of the current user with this button."""
        held = [(x.ref, x.message) for x in await self._letters()]
        held += [(p.ref, p.message) for p in self._previews.get(self.user, [])]
        return next((ref for ref, message in reversed(held)
                     if action in buttons_of(message)), None)

    async def _show_reply(self, reply: Reply | None, clicked: str | None = None) -> None:
        if reply is None:
            return
        shown = showing(reply, clicked is not None)
        if shown.replace is not None and clicked is not None:
            await self.platform.update(self.user, clicked, shown.replace)
            self._forget_preview(clicked)
            self.say(f"(message {clicked} updated)\n" + render(shown.replace))
        for message in shown.say:
            if message.buttons or message.poll:
                # Interactive replies (a preview) are held so that `click` finds them.
                self._hold(message)
            self.say(render(message))
        if shown.toast is not None and shown.replace is None:
            self.say(shown.toast)

    def _hold(self, message: OutboundMessage) -> None:
        ref = self.platform.add(self.user, message)
        self._previews.setdefault(self.user, []).append(InboxItem(ref, message))

    def _forget_preview(self, ref: str) -> None:
        held = self._previews.get(self.user, [])
        self._previews[self.user] = [p for p in held if p.ref != ref]

    async def _deliver(self, show: bool = True) -> None:
        if self.scheduler is not None:
            await self.scheduler.run_due()
        sent = await self.engine.drain()
        if sent:
            self.say(f"(delivered {sent} message{'s' if sent != 1 else ''})")
        if show and sent:  # only a delivery puts something new in an inbox
            await self._show_new()
        self._show_channels()

    def _show_channels(self) -> None:
        for channel, posts in self.platform.channels.items():
            for message, attachment in posts[self._posts.get(channel, 0):]:
                note = (f"\n(chart attached: {attachment.filename}, "
                        f"{len(attachment.content):,} bytes)") \
                    if attachment else ""
                self.say(f"[channel {channel}]\n" + render(message) + note)
            self._posts[channel] = len(posts)

    async def _show_new(self) -> None:
        shown = self._shown.setdefault(self.user, set())
        for letter in await self._letters():
            if letter.delivery_id not in shown:
                shown.add(letter.delivery_id)
                self.say(f"[inbox {letter.ref}]\n" + render(letter.message))

    async def _show_inbox(self) -> None:
        have = await self._letters()
        self._shown.setdefault(self.user, set()).update(x.delivery_id for x in have)
        if not have:
            self.say("(your inbox is empty)")
        for letter in have:
            self.say(f"[inbox {letter.ref}]\n" + render(letter.message))


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    """The lines of ``stream``; from its file descriptor where it has one, so that a read
    still blocked at exit holds no lock of ``sys.stdin``."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        yield from iter(stream.readline, b"")
        return
    pending = b""
    while chunk := os.read(fd, 65536):
        pending += chunk
        *whole, pending = pending.split(b"\n")
        yield from (line + b"\n" for line in whole)
    if pending:
        yield pending
