"""Slack form submissions: the drafting form and the rejection reason.

A form's fields are checked before Slack gets its answer, because only that
answer can show an error under a field; the domain's refusal of a draft lands
under the field it names (``Refusal.field``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck
from sqlalchemy import select
from sqlmodel import col

from announcements.types import Reply
from bot.inbound import NOT_IN_DIRECTORY, Inbound
from bot.slack.modal import field_errors, parse_draft, parse_reason, read_metadata
from bot.slack.respond import Where
from storage.db import Database
from storage.models import Person as PersonRow

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

PLATFORM = "slack"
#: How long a form submission may wait for the domain before Slack's 3-second deadline.
SUBMIT_WAIT = 2.0


def places(db: Database) -> tuple[list[str], list[str]]:
    """The active departments and locations, for the audience picker."""
    with db.session() as s:
        active = col(PersonRow.active).is_(True)
        departments = s.execute(select(col(PersonRow.department)).where(active).distinct()
                                .order_by(col(PersonRow.department))).scalars().all()
        locations = s.execute(select(col(PersonRow.location)).where(
            active, col(PersonRow.location).is_not(None)).distinct()
            .order_by(col(PersonRow.location))).scalars().all()
    return [str(d) for d in departments], [str(x) for x in locations if x]


async def on_draft(bot: SlackBot, ack: AsyncAck, body: dict[str, Any],
                   view: dict[str, Any]) -> None:
    user = body["user"]["id"]
    person = await bot.person(user)
    if person is None:
        await ack(response_action="errors", errors={"message": NOT_IN_DIRECTORY})
        return
    request, errors = parse_draft(view, person.timezone)
    if request is None:
        await ack(response_action="errors", errors=errors)
        return
    where = Where.of_meta(user, read_metadata(view))
    drafting = asyncio.ensure_future(bot.pipeline.draft(Inbound(PLATFORM, user), request))
    try:
        reply = await asyncio.wait_for(asyncio.shield(drafting), SUBMIT_WAIT)
    except TimeoutError:
        await ack()
        bot.later(_answer_when_done(bot, where, drafting))
        return
    if reply is not None and reply.error is not None:
        await ack(response_action="errors", errors=field_errors(reply.error))
        return
    await ack()
    bot.later(_show_preview(bot, where, reply))


async def _show_preview(bot: SlackBot, where: Where, reply: Reply | None) -> None:
    """The preview goes where /announce was typed, or to the DM for a form from the Home."""
    if reply is None or reply.message is None:
        return
    if where.response_url or where.channel:
        await bot.respond.tell(where, reply.message)
    else:
        await bot.respond.direct(where.user, reply.message)
    if where.home:
        await bot.publish_home(where.user)


async def _answer_when_done(bot: SlackBot, where: Where,
                            drafting: asyncio.Future[Reply | None]) -> None:
    await _show_preview(bot, where, await drafting)


async def on_reject(bot: SlackBot, ack: AsyncAck, body: dict[str, Any],
                    view: dict[str, Any]) -> None:
    reason, errors = parse_reason(view)
    if reason is None:
        await ack(response_action="errors", errors=errors)
        return
    await ack()
    meta = read_metadata(view)
    where = Where.of_meta(body["user"]["id"], meta)
    bot.later(_reject(bot, where, str(meta.get("a", "")), reason))


async def _reject(bot: SlackBot, where: Where, action: str, reason: str) -> None:
    inbound = Inbound(PLATFORM, where.user, channel=where.channel,
                      message_ref=where.message_ref)
    reply = await bot.pipeline.press(inbound, action, reason)
    await bot.respond.answer(where, reply)
    if where.home:
        await bot.publish_home(where.user)
