"""The Slack app: slash commands, buttons, modals and the App Home over slack-bolt.

Every request is verified with the signing secret (bolt's verifier, 5-minute
window) before anything else runs; there is no switch to turn that off.
Handlers acknowledge at once and do the work afterwards in tracked tasks, so
Slack always gets its answer within 3 seconds. The one exception is a form
submission: its fields are checked before the answer, because Slack can only
show errors under a field in that answer.

Idempotency: an event Slack retries (``X-Slack-Retry-Num``) is recognised by
its ``event_id``; a button pressed again within ``CLICK_WINDOW`` seconds by the
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
from sqlalchemy import select
from sqlmodel import col
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from announcements.types import OutboundMessage, Person, Reply, parse_action
from bot import grammar
from bot.app import Runtime
from bot.router import NOT_IN_DIRECTORY
from bot.server import Plugin
from bot.slack.blocks import unescape
from bot.slack.home import OPEN_FORM, home_view
from bot.slack.modal import (
    DRAFT_CALLBACK,
    REJECT_CALLBACK,
    draft_view,
    parse_draft,
    parse_reason,
    read_metadata,
    refusal_field,
    reject_view,
)
from bot.slack.platform import SlackPlatform, make_client
from bot.slack.respond import Responder, Where
from bot.slack.sync import link_by_email
from storage.events import first_time
from storage.models import InboundEvent
from storage.models import Person as PersonRow

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
#: A second press of the same button within this many seconds is a double click.
CLICK_WINDOW = 1.0
#: How long a form submission may wait for the domain before Slack's 3-second deadline.
SUBMIT_WAIT = 2.0


def _refusal(reply: Reply) -> str | None:
    """The domain's refusal text, when a reply is one (router replies start with ✗)."""
    message = reply.message
    if message is not None and not message.buttons and message.text.startswith("✗"):
        return message.text.removeprefix("✗").strip()
    return None


class SlackBot:
    """The bolt app plus the work it started and has not finished yet."""

    def __init__(self, runtime: Runtime, client: AsyncWebClient | None = None) -> None:
        settings = runtime.settings
        if not settings.slack_signing_secret:
            raise ValueError("SLACK_SIGNING_SECRET is not set, so requests from Slack cannot "
                             "be verified; copy it from the app's Basic Information page")
        self.runtime = runtime
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

    @property
    def _now(self) -> Any:
        return self.runtime.crier.clock.now()

    async def person(self, user: str) -> Person | None:
        """The directory person behind a Slack user, linking them by email on first contact."""
        router = self.runtime.router
        person = await router.identify(PLATFORM, user)
        if person is None and await link_by_email(self.runtime.db, self.client, user,
                                                  self.runtime.crier.clock):
            person = await router.identify(PLATFORM, user)
        return person

    def _once(self, key: str, stamp: float) -> bool:
        """True the first time ``key`` is seen within ``CLICK_WINDOW`` seconds."""
        db = self.runtime.db
        bucket = int(stamp // CLICK_WINDOW)
        if not first_time(db, PLATFORM, f"{key}@{bucket}", self._now):
            return False
        with db.session() as s:
            earlier = s.execute(select(col(InboundEvent.id)).where(
                col(InboundEvent.platform) == PLATFORM,
                col(InboundEvent.event_id) == f"{key}@{bucket - 1}")).first()
        return earlier is None

    # -- slash commands -----------------------------------------------------------

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        self.later(self._command(body))

    async def _command(self, body: dict[str, Any]) -> None:
        where = Where.of_command(body)
        line = f"{body['command']} {unescape(body.get('text') or '')}".strip()
        person = await self.person(where.user)
        if person is not None and _opens_form(line):
            await self.open_form(where, person)
            return
        reply = await self.runtime.router.text(PLATFORM, where.user, line, channel=where.channel)
        await self.respond.answer(where, reply)

    async def open_form(self, where: Where, person: Person) -> None:
        departments, locations = await asyncio.to_thread(self._places)
        view = draft_view(departments, locations, where.to_meta())
        try:
            await self.client.views_open(trigger_id=where.trigger_id, view=view)
        except SlackApiError as exc:
            log.warning("views.open failed: %s", exc.response.get("error"))
            await self.respond.tell(where, OutboundMessage(
                text="✗ The drafting form could not open in time.\n"
                     f"Type the announcement instead: {grammar.USAGE['announce']}"))

    def _places(self) -> tuple[list[str], list[str]]:
        with self.runtime.db.session() as s:
            active = col(PersonRow.active).is_(True)
            departments = s.execute(select(col(PersonRow.department)).where(active).distinct()
                                    .order_by(col(PersonRow.department))).scalars().all()
            locations = s.execute(select(col(PersonRow.location)).where(
                active, col(PersonRow.location).is_not(None)).distinct()
                .order_by(col(PersonRow.location))).scalars().all()
        return [str(d) for d in departments], [str(x) for x in locations if x]

    # -- buttons ------------------------------------------------------------------

    async def _on_action(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        self.later(self._action(body))

    async def _action(self, body: dict[str, Any]) -> None:
        where = Where.of_action(body)
        pressed = (body.get("actions") or [{}])[0]
        action = str(pressed.get("action_id") or "")
        stamp = float(pressed.get("action_ts") or 0)
        place = where.ts or (body.get("view") or {}).get("id") or ""
        if not await asyncio.to_thread(self._once, f"{where.user}:{place}:{action}", stamp):
            log.info("ignored a double click of %s by %s", action, where.user)
            return
        if action == OPEN_FORM:
            person = await self.person(where.user)
            if person is not None:
                await self.open_form(where, person)
            return
        parsed = parse_action(action)
        if parsed is None:
            return
        if parsed.verb == "reject":
            await self._ask_reason(where, action, parsed.announcement_id)
            return
        reply = await self.runtime.router.action(PLATFORM, where.user, action,
                                                 where.message_ref)
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
        user = body["user"]["id"]
        person = await self.person(user)
        if person is None:
            await ack(response_action="errors", errors={"message": NOT_IN_DIRECTORY})
            return
        request, errors = parse_draft(view, person.timezone)
        if request is None:
            await ack(response_action="errors", errors=errors)
            return
        where = Where.of_meta(user, read_metadata(view))
        drafting = asyncio.ensure_future(self.runtime.router.draft(PLATFORM, user, request))
        try:
            reply = await asyncio.wait_for(asyncio.shield(drafting), SUBMIT_WAIT)
        except TimeoutError:
            await ack()
            self.later(self._answer_when_done(where, drafting))
            return
        refusal = _refusal(reply)
        if refusal is not None:
            await ack(response_action="errors", errors={refusal_field(refusal): refusal})
            return
        await ack()
        self.later(self._show_preview(where, reply))

    async def _show_preview(self, where: Where, reply: Reply) -> None:
        """The preview goes where /announce was typed, or to the DM for a form from the Home."""
        if reply.message is None:
            return
        if where.response_url or where.channel:
            await self.respond.tell(where, reply.message)
        else:
            await self.respond.direct(where.user, reply.message)
        if where.home:
            await self.publish_home(where.user)

    async def _answer_when_done(self, where: Where, drafting: asyncio.Future[Reply]) -> None:
        await self._show_preview(where, await drafting)

    async def _on_reject(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason, errors = parse_reason(view)
        if reason is None:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        meta = read_metadata(view)
        where = Where.of_meta(body["user"]["id"], meta)
        self.later(self._reject(where, str(meta.get("a", "")), reason))

    async def _reject(self, where: Where, action: str, reason: str) -> None:
        reply = await self.runtime.router.action(PLATFORM, where.user, action,
                                                 where.message_ref, reason)
        await self.respond.answer(where, reply)
        if where.home:
            await self.publish_home(where.user)

    # -- App Home -------------------------------------------------------------------

    async def _on_home_opened(self, ack: AsyncAck, body: dict[str, Any],
                              event: dict[str, Any]) -> None:
        await ack()
        if event.get("tab", "home") != "home":
            return
        event_id = str(body.get("event_id") or "")
        if event_id and not await asyncio.to_thread(first_time, self.runtime.db, PLATFORM,
                                                    f"event:{event_id}", self._now):
            log.info("ignored a retried event %s", event_id)
            return
        self.later(self.publish_home(str(event["user"])))

    async def publish_home(self, user: str) -> None:
        person = await self.person(user)
        view = await asyncio.to_thread(home_view, self.runtime.db, person, self._now)
        await self.client.views_publish(user_id=user, view=view)


def _opens_form(line: str) -> bool:
    try:
        return isinstance(grammar.parse(line), grammar.OpenForm)
    except grammar.GrammarError:
        return False


def plugin(runtime: Runtime) -> Plugin:
    """``POST /slack/events`` (commands, interactivity, events) for ``crier serve``."""
    bot = SlackBot(runtime)
    runtime.extras["slack"] = bot
    platform = runtime.platforms.get(PLATFORM)

    async def startup() -> None:
        await bot.start()
        if isinstance(platform, SlackPlatform):
            await platform.start()

    async def shutdown() -> None:
        await bot.aclose()
        if isinstance(platform, SlackPlatform):
            await platform.aclose()

    return Plugin(
        name=PLATFORM,
        routes=[Route("/slack/events", bot.endpoint, methods=["POST"])],
        startup=[startup],
        shutdown=[shutdown],
        info={"events": "/slack/events"},
    )
