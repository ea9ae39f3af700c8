"""Bot Framework activities -> the inbound pipeline, and the answers Teams shows.

- ``message``: a command typed in the personal chat (``announce …``, ``/crier
  status``; the slash is optional) goes through the pipeline; the answer is
  posted back as cards. A message whose ``value`` names an ``action`` is an
  ``Action.Submit`` click (the fallback of older clients).
- ``invoke`` ``adaptiveCard/action``: an ``Action.Execute`` click, answered in the
  HTTP response with the refreshed card (a Got it card becomes "✓ Acknowledged");
  a second click finds the domain's "already" and changes nothing.
- ``installationUpdate`` / ``conversationUpdate`` and every message: the
  conversation reference is stored (``bot.teams.references``).
An activity id takes effect once (``storage.events`` through the pipeline).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from announcements.errors import CrierError
from announcements.ports import RateLimited
from announcements.types import OutboundMessage, Reply, Verb, parse_action
from bot import grammar
from bot.app import Runtime
from bot.inbound import Inbound, refusal, showing
from bot.inbound.commands import DRAFT_FORM
from bot.teams import cards, form, references
from bot.teams.platform import ConversationRef, TeamsPlatform

log = logging.getLogger("crier.teams")

PLATFORM = "teams"
NOT_LINKED = (
    "I don't know you yet: your Microsoft 365 account's email is not in Crier's directory. "
    "Ask your comms team or IT to add you."
)
INVOKE = "adaptiveCard/action"
FORM_MESSAGE = OutboundMessage(text="New announcement")
CHANNEL_ONLY = ("Talk to me in a personal chat for that: in a channel I only take "
                "`crier report subscribe` (and `unsubscribe`).")
_MENTION = re.compile(r"<at>.*?</at>", re.S)
_TAGS = re.compile(r"<[^>]+>")
#: The longest Retry-After an answer to a person waits for.
REPLY_WAIT = 5.0


def command_line(text: str) -> str | None:
    """``announce to:all Hi`` or ``/announce …`` -> ``/announce …``; None if not a command."""
    line = _TAGS.sub("", _MENTION.sub("", text)).strip()
    head, sep, rest = line.partition(" ")
    name = head.removeprefix("/").lower()
    if name not in grammar.USAGE:
        return None
    return f"/{name}{sep}{rest}"


class TeamsInbound:
    def __init__(self, runtime: Runtime, platform: TeamsPlatform) -> None:
        self.runtime = runtime
        self.platform = platform
        self.pipeline = runtime.router
        self._categories = runtime.crier.domain.config.categories
        self.pipeline.strangers[PLATFORM] = NOT_LINKED

    # -- one activity ---------------------------------------------------------------

    async def handle(self, activity: dict[str, Any]) -> dict[str, Any] | None:
        """Process one verified activity; the body of an invoke response, or None."""
        ref = self._reference(activity)
        user = _user(activity)
        if ref is not None and user:
            await self._remember(activity, ref, user)
        kind = activity.get("type")
        if kind == "invoke" and activity.get("name") == INVOKE:
            return await self._execute(activity, ref, user)
        if kind == "message" and user and ref is not None:
            await self._message(activity, ref, user)
        return None

    def _reference(self, activity: dict[str, Any]) -> ConversationRef | None:
        conversation = activity.get("conversation") or {}
        service = activity.get("serviceUrl")
        if not service or not conversation.get("id"):
            return None
        tenant = ((activity.get("channelData") or {}).get("tenant") or {}).get("id", "")
        return ConversationRef(str(service), str(conversation["id"]), str(tenant),
                               _user(activity))

    async def _remember(self, activity: dict[str, Any], ref: ConversationRef,
                        user: str) -> None:
        """Keep a personal chat's reference; link an unknown user by their Entra email."""
        conversation = activity.get("conversation") or {}
        if conversation.get("conversationType", "personal") != "personal":
            return
        rt = self.runtime
        address = ref.dumps()
        if await self.pipeline.run(references.store, rt.db, user, address):
            return
        try:
            member = await self.platform.member(ref.service_url, ref.conversation,
                                                str((activity.get("from") or {}).get("id")))
        except Exception as exc:  # noqa: BLE001 - they are told they are unknown
            log.warning("cannot look up Teams user %s: %s", user, exc)
            return
        email = str(member.get("email") or member.get("userPrincipalName") or "")
        if not email:
            return
        linked: bool = await self.pipeline.run(references.link_and_store, rt.db,
                                               rt.crier.clock, user, email, address)
        if linked:
            log.info("linked Teams user %s by email", user)

    def _inbound(self, activity: dict[str, Any], user: str, ref: ConversationRef | None,
                 clicked: str | None = None) -> Inbound:
        """``channel`` is the conversation's compact address (a report subscription)."""
        keys = (f"activity:{activity['id']}",) if activity.get("id") else ()
        return Inbound(PLATFORM, user, keys, ref.compact() if ref else None, clicked)

    # -- typed commands and Action.Submit ---------------------------------------------

    async def _message(self, activity: dict[str, Any], ref: ConversationRef,
                       user: str) -> None:
        value = activity.get("value")
        if isinstance(value, dict) and value.get("action") == form.DRAFT:
            content = await self._form(activity, ref, user, value)
            clicked = activity.get("replyToId")
            if clicked:
                await self.platform.put_card(ref, str(clicked), content, FORM_MESSAGE)
            else:
                await self.platform.post(ref, cards.activity(content, FORM_MESSAGE))
            return
        if isinstance(value, dict) and isinstance(value.get("action"), str):
            clicked = activity.get("replyToId")
            reply = await self._press(activity, ref, user, value, clicked)
            if reply is None:
                return
            show = showing(reply, clicked=clicked is not None)
            if show.replace is not None and clicked:
                notes = [m.text for m in show.say]
                content = cards.refreshed(show.replace, value["action"], notes)
                try:
                    await self.platform.put_card(ref, str(clicked), content, show.replace)
                    return
                except Exception as exc:  # noqa: BLE001 - the click itself took effect
                    log.warning("could not refresh card %s: %s", clicked, exc)
            await self._say(ref, show.say)
            return
        line = command_line(str(activity.get("text") or ""))
        personal = (activity.get("conversation") or {}).get("conversationType",
                                                            "personal") == "personal"
        if not personal and not _is_report_command(line):
            await self._say(ref, [OutboundMessage(text=CHANNEL_ONLY)])
            return
        if line is None:
            await self._say(ref, [OutboundMessage(
                text="Type a command, e.g. `crier help`, `announce to:all Hello` or "
                     "`crier status`.")])
            return
        reply = await self.pipeline.text(self._inbound(activity, user, ref), line)
        if reply is not None and reply.form == DRAFT_FORM and reply.error is None:
            card = form.draft_card(categories=self._categories)
            await self.platform.post(ref, cards.activity(card, FORM_MESSAGE))
        elif reply is not None:
            await self._say(ref, showing(reply, clicked=False).say)

    async def _form(self, activity: dict[str, Any], ref: ConversationRef | None, user: str,
                    data: dict[str, Any]) -> dict[str, Any]:
        """A submitted drafting form: the preview card, or the form again with the errors
        under their fields (nothing drafted)."""
        request, errors = form.parse(data)
        if request is None:
            return form.draft_card(data, errors, self._categories)
        reply = await self.pipeline.draft(self._inbound(activity, user, ref), request)
        if reply is None or reply.message is None:
            return form.draft_card(data, {"form": "That was submitted already."},
                                   self._categories)
        if reply.error is not None:
            return form.draft_card(data, form.refused(reply.error), self._categories)
        return cards.cards(reply.message)[-1]

    async def _press(self, activity: dict[str, Any], ref: ConversationRef | None, user: str,
                     data: dict[str, Any], clicked: str | None) -> Reply | None:
        action = str(data.get("action") or "")
        reason = data.get(cards.REASON)
        parsed = parse_action(action)
        value: str | None = None
        if parsed is not None and parsed.verb in (Verb.REJECT, Verb.REJECT_EDIT):
            value = str(reason or "").strip()
            if not value:
                return refusal(CrierError("a rejection needs a reason",
                                          "Type the reason in the box, then press Reject.",
                                          field=cards.REASON))
        return await self.pipeline.press(self._inbound(activity, user, ref, clicked), action,
                                         value)

    async def _say(self, ref: ConversationRef, messages: Any) -> None:
        """Answer in the conversation right away (not through the outbox); a 429 is
        waited out once (up to ``REPLY_WAIT`` seconds)."""
        for message in messages:
            for attempt in (1, 2):
                try:
                    await self.platform.send(ref.dumps(), message)
                    break
                except RateLimited as exc:
                    if attempt == 2 or exc.retry_after > REPLY_WAIT:
                        log.warning("could not answer in Teams: %s", exc)
                        break
                    await asyncio.sleep(exc.retry_after)
                except Exception as exc:  # noqa: BLE001 - one lost answer must not stop the rest
                    log.warning("could not answer in Teams conversation: %s", exc)
                    break

    # -- Action.Execute -----------------------------------------------------------------

    async def _execute(self, activity: dict[str, Any], ref: ConversationRef | None,
                       user: str) -> dict[str, Any]:
        action = (activity.get("value") or {}).get("action") or {}
        data = dict(action.get("data") or {})
        data.setdefault("action", action.get("verb"))
        if data["action"] == form.DRAFT and user:
            return {"statusCode": 200, "type": cards.CARD_TYPE,
                    "value": await self._form(activity, ref, user, data)}
        clicked = activity.get("replyToId")
        reply = await self._press(activity, ref, user, data, clicked) if user else None
        if reply is None:  # a duplicate delivery: the first one answered
            return {"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
                    "value": "Done."}
        show = showing(reply, clicked=True)
        notes = [m.text for m in show.say]
        if show.replace is not None:
            return {"statusCode": 200, "type": cards.CARD_TYPE,
                    "value": cards.refreshed(show.replace, str(data["action"]), notes)}
        return {"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
                "value": "\n".join(notes) or show.toast or "Done."}

def _is_report_command(line: str | None) -> bool:
    words = (line or "").lower().split()
    return words[:3] in (["/crier", "report", "subscribe"], ["/crier", "report", "unsubscribe"])


def _user(activity: dict[str, Any]) -> str:
    sender = activity.get("from") or {}
    return str(sender.get("aadObjectId") or "")
