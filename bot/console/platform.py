"""The console as a chat platform.

It implements the same ``ChatPlatform`` protocol as Slack or Telegram, and the
delivery engine sends to it exactly as it sends to them. What it sent in this
process is kept per person (what tests read, like a fake's recorded requests);
the console session's inbox is read from the database (``bot.console.inbox``),
so it survives a restart. Message references are ``m`` and a number, never
reused: a new process continues after the highest one stored (``resume_after``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from announcements.ports import Attachment, PermanentError, RateLimits, Unreachable
from announcements.types import OutboundMessage
from bot.console.inbox import REF


@dataclass
class InboxItem:
    ref: str
    message: OutboundMessage
    deleted: bool = False
    updated: bool = False


@dataclass
class ConsolePlatform:
    name: str = "console"
    identifies_by_email: bool = True
    limits: RateLimits = field(default_factory=lambda: RateLimits(0, 0))
    inboxes: dict[str, list[InboxItem]] = field(default_factory=dict)
    channels: dict[str, list[tuple[OutboundMessage, Attachment | None]]] = field(
        default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def inbox(self, email: str) -> list[InboxItem]:
        return [i for i in self.inboxes.get(email.lower(), []) if not i.deleted]

    def find(self, email: str, ref: str) -> InboxItem | None:
        return next((i for i in self.inboxes.get(email.lower(), []) if i.ref == ref), None)

    def resume_after(self, last: int) -> None:
        """Number new messages after ``last`` (the highest reference a database holds)."""
        self._ids = itertools.count(last + 1)

    def add(self, address: str, message: OutboundMessage) -> str:
        ref = f"m{next(self._ids)}"
        self.inboxes.setdefault(address.lower(), []).append(InboxItem(ref, message))
        return ref

    async def start(self) -> None:
        """Nothing to open: the inboxes live in memory."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def open_direct(self, account: str) -> str:
        """A console inbox is addressed by the person's email."""
        if not account.strip():
            raise Unreachable("no console address")
        return account.strip().lower()

    async def send(self, address: str, message: OutboundMessage) -> str:
        if not address:
            raise PermanentError("no console address")
        return self.add(address, message)

    async def update(self, address: str, message_ref: str, message: OutboundMessage) -> None:
        if not REF.fullmatch(message_ref):
            raise PermanentError(f"no message {message_ref} for {address}")
        item = self.find(address, message_ref)
        if item is not None:  # one sent by an earlier process reads anew from the database
            item.message, item.updated = message, True

    async def delete(self, address: str, message_ref: str) -> None:
        item = self.find(address, message_ref)
        if item is not None:
            item.deleted = True

    async def post_report(
        self, channel: str, message: OutboundMessage, attachment: Attachment | None
    ) -> str:
        self.channels.setdefault(channel, []).append((message, attachment))
        return f"{channel}:{len(self.channels[channel])}"
