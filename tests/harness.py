"""A chat harness on the console platform: people type, click and read their inbox."""

from __future__ import annotations

import re
from dataclasses import dataclass

from announcements.clock import ManualClock
from announcements.types import OutboundMessage, Reply
from bot.app import Runtime, build
from bot.console import ConsolePlatform
from bot.console.render import render
from bot.inbound import Inbound, showing
from bot.settings import Settings
from storage.db import Database
from tests.factories import APPROVER, COMMS, seed


def shown(reply: Reply | None, clicked: bool = False) -> str:
    """What the person reads: what was said to them, then the replaced message."""
    if reply is None:
        return ""
    show = showing(reply, clicked)
    parts = [render(m) for m in (*show.say, show.replace) if m is not None]
    return "\n".join(parts)


@dataclass
class Chat:
    runtime: Runtime
    platform: ConsolePlatform
    clock: ManualClock

    async def say(self, email: str, line: str) -> str:
        reply = await self.runtime.router.text(Inbound("console", email, channel="console"),
                                               line)
        return shown(reply)

    async def click(self, email: str, action: str, value: str | None = None) -> str:
        holder = next((i for i in reversed(self.platform.inbox(email))
                       if action in _actions(i.message)), None)
        inbound = Inbound("console", email, message_ref=holder.ref if holder else None)
        reply = await self.runtime.router.press(inbound, action, value)
        show = showing(reply, holder is not None) if reply is not None else None
        if show is not None and show.replace is not None and holder is not None:
            await self.platform.update(email, holder.ref, show.replace)
        return shown(reply, holder is not None)

    async def tick(self) -> int:
        """What a running server does each second: due jobs, then the outbox."""
        await self.runtime.scheduler.run_due()
        return await self.runtime.engine.drain()

    async def approved(self, line: str, author: str = COMMS.email,
                       approver: str = APPROVER.email) -> int:
        """Draft, submit and approve; return the announcement id."""
        out = await self.say(author, line)
        match = re.search(r"submit:(\d+)", out)
        assert match, out
        ann = int(match.group(1))
        assert "submitted" in await self.click(author, f"submit:{ann}")
        await self.tick()
        out = await self.click(approver, f"approve:{ann}")
        assert f"Approved #{ann}" in out, out
        await self.tick()
        return ann

    def messages(self, email: str, announcement_id: int | None = None) -> list[OutboundMessage]:
        return [i.message for i in self.platform.inbox(email)
                if announcement_id is None or i.message.announcement_id == announcement_id]

    def texts(self, email: str) -> list[str]:
        return [m.text for m in self.messages(email)]


def _actions(message: OutboundMessage) -> list[str]:
    ids = [b.action for b in message.buttons]
    if message.poll:
        ids += [c.action for c in message.poll.choices]
    return ids


def make_chat(db: Database, clock: ManualClock, settings: Settings | None = None,
              **seed_kw: object) -> Chat:
    seed(db, clock, **seed_kw)  # type: ignore[arg-type]
    platform = ConsolePlatform()
    settings = settings or Settings(database_url=str(db.url))
    runtime = build(settings, {"console": platform}, clock=clock, db=db)
    runtime.scheduler.scheduler.reconcile()
    return Chat(runtime, platform, clock)
