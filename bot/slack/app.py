"""The Slack app: slash commands, buttons, modals and the App Home over slack-bolt.

Every request is verified with the signing secret (bolt's verifier, 5-minute
window) before anything else runs; there is no switch to turn that off. Then
the request goes through the inbound pipeline (``bot.inbound``) and its reply
is shown by ``Responder``.

Slack's 3-second ack: commands and clicks are acknowledged at once and handled
right after in tracked tasks. That work stays at-least-once: its event is
recorded only in the transaction of its effect, and when it fails the person is
told "that did not go through, try again" (through ``response_url``), so their
second try takes effect once. A form submission is handled before the answer
(up to ``forms.SUBMIT_WAIT``), because Slack can only show errors under a field in
that answer. An event Slack retries (``X-Slack-Retry-Num``) is recognised by
its ``event_id``; a button pressed again within ``bot.inbound.CLICK_WINDOW`` s by the
same person on the same message is a double click and has no second effect.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine
from typing import Any

import aiohttp
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from announcements.types import OutboundMessage, Person, Verb, parse_action
from bot import grammar
from bot.app import Runtime
from bot.inbound import NOT_IN_DIRECTORY, Inbound, click_keys
from bot.inbound.commands import DRAFT_FORM
from bot.server import Plugin
from bot.slack import forms
from bot.slack.blocks import unescape
from bot.slack.home import OPEN_FORM, home_view
from bot.slack.modal import DRAFT_CALLBACK, REJECT_CALLBACK, draft_view, reject_view
from bot.slack.platform import make_client
from bot.slack.respond import Responder, Where
from bot.slack.sync import link_by_email

log = logging.getLogger("crier.slack")


class _OneClient(logging.Filter):
    """bolt warns that SLACK_BOT_TOKEN (read from the environment) is unused when it gets
    a client; Crier always gives it the client built from that very token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


bolt_log = logging.getLogger("crier.slack.bolt")
bolt_log.addFilter(_OneClient())

PLATFORM = "slack"
#: The slash commands manifest.yml registers: the shared grammar's commands.
COMMANDS = tuple(f"/{name}" for name in grammar.USAGE)


class SlackBot:
    """The bolt app plus the work it started and has not finished yet."""

    def __init__(self, runtime: Runtime, client: AsyncWebClient | None = None) -> None:
        settings = runtime.settings
        if not settings.slack_signing_secret:
            raise ValueError("SLACK_SIGNING_SECRET is not set, so requests from Slack cannot "
                             "be verified; copy it from the app's Basic Information page")
        self.runtime = runtime
        self.pipeline = runtime.router
        self.client = client or make_client(settings)
        self.respond = Responder(self.client)
        self.app = AsyncApp(
            client=self.client,
            signing_secret=settings.slack_signing_secret,
            process_before_response=True,  # listeners only ack and hand work to later()
            logger=bolt_log,
        )
        self.handler = AsyncSlackRequestHandler(self.app)
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.pipeline.linkers[PLATFORM] = self._link
        self._register()

    # -- plumbing ---------------------------------------------------------------

    def _register(self) -> None:
        names = "|".join(re.escape(c) for c in COMMANDS)
        self.app.command(re.compile(f"^({names})$"))(self._on_command)
        self.app.action(re.compile(r".+"))(self._on_action)
        self.app.view_submission(DRAFT_CALLBACK)(self._on_draft)
        self.app.view_submission(REJECT_CALLBACK)(self._on_reject)
        self.app.event("app_home_opened")(self._on_home_opened)

    async def endpoint(self, request: Request) -> Response:
        return await self.handler.handle(request)

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` after the answer to Slack; ``settle()`` waits for it."""
        task = asyncio.create_task(self._guarded(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception:  # noqa: BLE001 - a failed click must not take the server down
            log.exception("Slack work failed")

    async def settle(self) -> None:
        """Wait until every piece of work started by a request has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def start(self) -> None:
        """One HTTP connection pool for the Web API and response_url (inside the loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.client.timeout))
            self.client.session = self._session
            self.respond.session = self._session
        try:
            auth = await self.client.auth_test()
            log.info("Slack: signed in as @%s in %s", auth.get("user"), auth.get("team"))
        except SlackApiError as exc:
            log.error("Slack refused SLACK_BOT_TOKEN (%s): copy the Bot User OAuth Token "
                      "(xoxb-…) from the app's OAuth & Permissions page",
                      exc.response.get("error"))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("Slack is not reachable at %s (%s); requests will be retried",
                        self.client.base_url, exc)

    async def aclose(self) -> None:
        await self.settle()
        if self._session is not None:
            await self._session.close()
        self._session = self.client.session = self.respond.session = None

    async def _link(self, user: str) -> bool:
        """Link a Slack account to its directory entry by email on first contact."""
        return await link_by_email(self.runtime.db, self.client, user, self.runtime.crier.clock)

    async def person(self, user: str) -> Person | None:
        return await self.pipeline.identify(PLATFORM, user)

    # -- slash commands -----------------------------------------------------------

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        self.later(self._command(body))

    async def _command(self, body: dict[str, Any]) -> None:
        where = Where.of_command(body)
        line = f"{body['command']} {unescape(body.get('text') or '')}".strip()
        reply = await self.pipeline.text(Inbound(PLATFORM, where.user, channel=where.channel),
                                         line)
        if reply is not None and reply.form == DRAFT_FORM:
            await self.open_form(where)
            return
        await self.respond.answer(where, reply)

    async def open_form(self, where: Where) -> None:
        departments, locations = await self.pipeline.run(forms.places, self.runtime.db)
        view = draft_view(departments, locations, where.to_meta(),
                          self.runtime.crier.domain.config.categories)
        try:
            await self.client.views_open(trigger_id=where.trigger_id, view=view)
        except SlackApiError as exc:
            log.warning("views.open failed: %s", exc.response.get("error"))
            await self.respond.tell(where, OutboundMessage(
                text="✗ The drafting form could not open in time.\n"
                     f"Type the announcement instead: {grammar.USAGE['announce']}"))

    # -- buttons ------------------------------------------------------------------

    async def _on_action(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        self.later(self._action(body))

    async def _action(self, body: dict[str, Any]) -> None:
        where = Where.of_action(body)
        pressed = (body.get("actions") or [{}])[0]
        action = str(pressed.get("action_id") or "")
        if action == OPEN_FORM:
            if await self.person(where.user) is not None:
                await self.open_form(where)
            return
        parsed = parse_action(action)
        if parsed is not None and parsed.verb == Verb.REJECT:
            await self._ask_reason(where, action, parsed.announcement_id)
            return
        stamp = float(pressed.get("action_ts") or 0)
        place = where.ts or (body.get("view") or {}).get("id") or ""
        inbound = Inbound(PLATFORM, where.user, click_keys(where.user, place, action, stamp),
                          where.channel, where.message_ref)
        reply = await self.pipeline.press(inbound, action)
        if reply is None:
            log.info("ignored a double click of %s by %s", action, where.user)
            return
        await self.respond.answer(where, reply)
        if where.home:
            await self.publish_home(where.user)

    async def _ask_reason(self, where: Where, action: str, ann_id: int) -> None:
        if await self.person(where.user) is None:
            await self.respond.tell(where, OutboundMessage(text=NOT_IN_DIRECTORY))
            return
        meta = {"a": action, **where.to_meta()}
        try:
            await self.client.views_open(trigger_id=where.trigger_id,
                                         view=reject_view(f"#{ann_id}", meta))
        except SlackApiError as exc:
            log.warning("views.open (reject) failed: %s", exc.response.get("error"))
            await self.respond.tell(where, OutboundMessage(
                text="✗ The rejection form could not open in time. Press Reject again."))

    # -- forms --------------------------------------------------------------------

    async def _on_draft(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await forms.on_draft(self, ack, body, view)

    async def _on_reject(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await forms.on_reject(self, ack, body, view)

    # -- App Home -------------------------------------------------------------------

    async def _on_home_opened(self, ack: AsyncAck, body: dict[str, Any],
                              event: dict[str, Any]) -> None:
        await ack()
        if event.get("tab", "home") != "home":
            return
        event_id = str(body.get("event_id") or "")
        self.later(self.publish_home(str(event["user"]), (f"event:{event_id}",)
                                     if event_id else ()))

    async def publish_home(self, user: str, keys: tuple[str, ...] = ()) -> None:
        """Show ``user`` their App Home; once per event (``keys``) however often it comes."""
        person = await self.person(user)
        now = self.runtime.crier.clock.now()
        view = await self.pipeline.effect(Inbound(PLATFORM, user, keys), home_view,
                                          self.runtime.db, person, now)
        if view is None:
            log.info("ignored a retried event %s", keys[0])
            return
        await self.client.views_publish(user_id=user, view=view[0])


def plugin(runtime: Runtime) -> Plugin:
    """``POST /slack/events`` (commands, interactivity, events) for ``crier serve``."""
    bot = SlackBot(runtime)
    runtime.extras["slack"] = bot

    async def startup() -> None:
        await bot.start()

    async def shutdown() -> None:
        await bot.aclose()

    return Plugin(
        name=PLATFORM,
        routes=[Route("/slack/events", bot.endpoint, methods=["POST"])],
        startup=[startup],
        shutdown=[shutdown],
        info={"events": "/slack/events"},
    )
