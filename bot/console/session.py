"""The console chat loop: reads lines, so it can be scripted.

    /...         a command of the current user
    as EMAIL     switch user
    inbox        what the current user has received
    click ID     press a button (``click reject:12 Needs a date`` adds a reason)
    help, quit
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from announcements.delivery import DeliveryEngine
from announcements.types import Reply
from bot.console.platform import ConsolePlatform, InboxItem
from bot.console.render import buttons_of, render
from bot.inbound import NOT_IN_DIRECTORY, Inbound, Pipeline, showing
from bot.inbound.text import decoded, unstorable
from bot.scheduling import SchedulerService

PLATFORM = "console"

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
        self._seen: dict[str, int] = {}

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def run(self, lines: Iterable[str | bytes], prompt: bool = False) -> None:
        for raw in lines:
            if not await self.handle(raw):
                break
            if prompt:
                print(f"{self.user}> ", end="", file=self.out, flush=True)

    async def handle(self, raw: str | bytes) -> bool:
        """Process one line; False means quit. Bytes that are not UTF-8 read as �."""
        line = decoded(raw).strip()
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
            self._show_inbox(all_items=True)
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
        self.say(f"You are now {person.name} <{person.email}> ({person.department}).")

    async def _click(self, rest: str) -> None:
        action, _, value = rest.strip().partition(" ")
        if not action:
            self.say("✗ `click` needs a button ID, e.g. `click ack:12`. Type `inbox` to see them.")
            return
        item = self._holding(action)
        reply = await self.router.press(self._inbound(item.ref if item else None), action,
                                        value.strip() or None)
        await self._show_reply(reply, item)

    def _inbound(self, ref: str | None = None) -> Inbound:
        return Inbound(PLATFORM, self.user, channel=PLATFORM, message_ref=ref)

    def _holding(self, action: str) -> InboxItem | None:
        for item in reversed(self.platform.inbox(self.user)):
            if action in buttons_of(item.message):
                return item
        return None

    async def _show_reply(self, reply: Reply | None, clicked: InboxItem | None = None) -> None:
        if reply is None:
            return
        shown = showing(reply, clicked is not None)
        if shown.replace is not None and clicked is not None:
            await self.platform.update(self.user, clicked.ref, shown.replace)
            self.say(f"(message {clicked.ref} updated)\n" + render(shown.replace))
        for message in shown.say:
            if message.buttons or message.poll:
                # Interactive replies (a preview) stay in the inbox so `click` finds them.
                self.platform.add(self.user, message)
                self._seen[self.user] = len(self.platform.inboxes[self.user])
            self.say(render(message))
        if shown.toast is not None and shown.replace is None:
            self.say(shown.toast)

    async def _deliver(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.run_due()
        sent = await self.engine.drain()
        if sent:
            self.say(f"(delivered {sent} message{'s' if sent != 1 else ''})")
        self._show_inbox(all_items=False)
        self._show_channels()

    def _show_channels(self) -> None:
        for channel, posts in self.platform.channels.items():
            start = self._seen.get(f"#{channel}", 0)
            for message, attachment in posts[start:]:
                note = (f"\n(chart attached: {attachment.filename}, "
                        f"{len(attachment.content):,} bytes)") \
                    if attachment else ""
                self.say(f"[channel {channel}]\n" + render(message) + note)
            self._seen[f"#{channel}"] = len(posts)

    def _show_inbox(self, all_items: bool) -> None:
        items = self.platform.inboxes.get(self.user, [])
        start = 0 if all_items else self._seen.get(self.user, 0)
        fresh = [i for i in items[start:] if not i.deleted]
        self._seen[self.user] = len(items)
        if all_items and not fresh:
            self.say("(your inbox is empty)")
        for item in fresh:
            self.say(f"[inbox {item.ref}]\n" + render(item.message))
