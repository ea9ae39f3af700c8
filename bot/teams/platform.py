"""Teams as a ``ChatPlatform``: proactive messages through the Bot Framework
connector (``POST {serviceUrl}/v3/conversations/{id}/activities``, ``PUT`` and
``DELETE …/activities/{activityId}``) with a bearer token from ``TEAMS_TOKEN_URL``.

A person's address is their conversation reference (``ConversationRef`` as JSON in
``Identity.address``), stored when Teams tells Crier about the conversation (the
app installed, any message). Someone without one has not installed the app:
sending to them is ``Unreachable`` with ``NOT_INSTALLED`` as the reason, never
retried. A message reference is the ids of the activities a send produced
(several when a long text was split), joined by commas.

The connector's answers, as the delivery engine reads them: 429 pauses the lane
for ``Retry-After``; 412, 5xx and network errors are retried; 403 and 404 (the
app was removed, the conversation is gone) are unreachable; other 4xx are
permanent.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

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
from bot.teams import cards
from bot.teams.tokens import BOT_SCOPE, CredentialsRefused, TokenProvider, TokenUnavailable

log = logging.getLogger("crier.teams")

#: Microsoft's bot limits ("Rate limiting for bots", learn.microsoft.com): 7 messages
#: per second to one conversation, which Crier keeps under by a margin (network jitter
#: bunches requests up); a tenant-wide budget of 50/s by default
#: (``CRIER_RATE_LIMIT_TEAMS=PER_SECOND,PER_CONVERSATION``).
TEAMS_LIMITS = RateLimits(per_second=50.0, per_conversation=6.0, burst=1)
NOT_INSTALLED = ("Teams: not installed (no conversation reference yet; "
                 "`crier teams install-for EMAIL` installs the app for them)")
#: Report charts are served under this path of ``CRIER_PUBLIC_URL``; the newest are kept.
CHART_PATH = "/teams/charts/"
KEPT_CHARTS = 20
RETRIED = frozenset({412, 500, 502, 503, 504})
GONE = frozenset({403, 404})


@dataclass(frozen=True)
class ConversationRef:
    """Where to reach a person (or a channel) proactively."""

    service_url: str  # with its path: it is regional (…/amer/, …/emea/)
    conversation: str
    tenant: str
    user: str | None = None  # the person's aadObjectId

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    def compact(self) -> str:
        """``SERVICE_URL CONVERSATION``: a channel's address where only 200 characters
        fit (a report subscription)."""
        return f"{self.service_url} {self.conversation}"

    @classmethod
    def loads(cls, raw: str | None) -> ConversationRef | None:
        """The reference stored in ``raw`` (JSON, or ``compact``); None for anything else
        (an account id only)."""
        if raw and raw.startswith("http") and " " in raw:
            service, conversation = raw.split(" ", 1)
            return cls(service, conversation, "")
        if not raw or not raw.startswith("{"):
            return None
        try:
            data = json.loads(raw)
            return cls(str(data["service_url"]), str(data["conversation"]),
                       str(data["tenant"]), data.get("user"))
        except (ValueError, KeyError, TypeError):
            return None

    def url(self, activity_id: str | None = None) -> str:
        base = (f"{self.service_url.rstrip('/')}/v3/conversations/"
                f"{quote(self.conversation, safe=':@;')}/activities")
        return f"{base}/{quote(activity_id, safe=':')}" if activity_id else base


def _ref(address: str) -> ConversationRef:
    ref = ConversationRef.loads(address)
    if ref is None:
        raise Unreachable(NOT_INSTALLED)
    return ref


def _retry_after(answer: httpx.Response) -> float:
    try:
        return max(0.0, float(answer.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


@dataclass
class TeamsPlatform:
    tokens: TokenProvider
    app_id: str
    name: str = "teams"
    identifies_by_email: bool = False
    limits: RateLimits = TEAMS_LIMITS
    timeout: float = 15.0
    http: httpx.AsyncClient | None = None
    #: Where ``crier serve`` is reached (``CRIER_PUBLIC_URL``): report charts are shown
    #: from there.
    public_url: str | None = None
    charts: OrderedDict[str, bytes] = field(default_factory=OrderedDict, repr=False)
    _owned: bool = field(default=False, repr=False)

    async def start(self) -> None:
        if self.http is None or self.http.is_closed:
            self.http = httpx.AsyncClient(timeout=self.timeout,
                                          limits=httpx.Limits(max_connections=64))
            self._owned = True
            self.tokens.http = self.http

    async def stop(self) -> None:
        if self.http is not None and self._owned:
            await self.http.aclose()
            self.http = None

    # -- the connector ------------------------------------------------------------------

    async def call(self, method: str, url: str, body: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
        """One connector request; Microsoft's answers as delivery errors."""
        await self.start()
        assert self.http is not None
        try:
            token = await self.tokens.token(BOT_SCOPE)
        except CredentialsRefused as exc:
            raise TransientError(f"Teams: {exc.message}") from None
        except TokenUnavailable as exc:
            raise TransientError(f"Teams: {exc}") from None
        try:
            answer = await self.http.request(method, url, json=body,
                                             headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise TransientError(f"Teams: {type(exc).__name__} talking to the connector") \
                from None
        status = answer.status_code
        if status < 300:
            try:
                data = answer.json() if answer.content else {}
            except ValueError:
                data = {}
            return data if isinstance(data, dict) else {}
        what = f"Teams: the connector answered {status} to {method}"
        if status == 429:
            raise RateLimited(_retry_after(answer), "Teams throttled the bot")
        if status == 401:
            self.tokens.forget(BOT_SCOPE)
            raise TransientError(what + " (token refused; a new one is fetched)")
        if status in RETRIED:
            raise TransientError(what)
        if status in GONE:
            raise Unreachable(what + " (the app was removed or the chat is gone)")
        raise PermanentError(what)

    async def member(self, service_url: str, conversation: str, user_id: str
                     ) -> dict[str, Any]:
        """A conversation member as the connector describes them (email, aadObjectId)."""
        ref = ConversationRef(service_url, conversation, "")
        url = ref.url().removesuffix("/activities") + f"/members/{quote(user_id, safe=':')}"
        return await self.call("GET", url)

    async def post(self, ref: ConversationRef, activity: dict[str, Any]) -> str:
        data = await self.call("POST", ref.url(), activity)
        return str(data.get("id") or "")

    # -- ChatPlatform -----------------------------------------------------------------

    async def open_direct(self, account: str) -> str:
        """A person's chat is known only once the app is installed for them."""
        if ConversationRef.loads(account) is None:
            raise Unreachable(NOT_INSTALLED)
        return account

    async def send(self, address: str, message: OutboundMessage) -> str:
        ref = _ref(address)
        sent: list[str] = []
        try:
            for activity in cards.activities(message):
                sent.append(await self.post(ref, activity))
        except Exception:
            for activity_id in sent:  # a retry sends every part again
                try:
                    await self.call("DELETE", ref.url(activity_id))
                except Exception:  # noqa: BLE001 - best effort
                    log.debug("could not undo part %s", activity_id)
            raise
        return ",".join(sent)

    async def update(self, address: str, message_ref: str, message: OutboundMessage) -> None:
        """Replace the sent card(s); the last one holds the buttons."""
        ref = _ref(address)
        ids = [i for i in message_ref.split(",") if i]
        if not ids:
            raise PermanentError(f"not a Teams message reference: {message_ref!r}")
        parts = cards.activities(message)
        if len(parts) > len(ids):
            log.warning("edited message %s grew to %d cards; the middle ones are not shown",
                        message_ref, len(parts))
            parts = parts[: len(ids) - 1] + parts[-1:]
        for activity_id, activity in zip(ids[-len(parts):], parts, strict=True):
            await self.call("PUT", ref.url(activity_id), {**activity, "id": activity_id})
        for activity_id in ids[: len(ids) - len(parts)]:
            await self._delete(ref, activity_id)

    async def put_card(self, ref: ConversationRef, activity_id: str, content: dict[str, Any],
                       message: OutboundMessage) -> None:
        """Replace one sent activity with ``content`` (a clicked card, refreshed)."""
        await self.call("PUT", ref.url(activity_id),
                        {**cards.activity(content, message), "id": activity_id})

    async def delete(self, address: str, message_ref: str) -> None:
        ref = _ref(address)
        for activity_id in [i for i in message_ref.split(",") if i]:
            await self._delete(ref, activity_id)

    async def _delete(self, ref: ConversationRef, activity_id: str) -> None:
        try:
            await self.call("DELETE", ref.url(activity_id))
        except Unreachable as exc:
            if "404" not in str(exc):
                raise  # 404: deleted already

    async def post_report(self, channel: str, message: OutboundMessage,
                          attachment: Attachment | None) -> str:
        """The weekly report in a channel (or a personal chat): a card with the chart.

        A chart is larger than a Teams message may be, so the card shows it from
        ``CRIER_PUBLIC_URL/teams/charts/…`` (``charts``; without a public URL the card
        goes without it)."""
        ref = _ref(channel)
        body = cards.cards(message)
        if attachment is not None and self.public_url:
            token = secrets.token_urlsafe(16)
            self.charts[token] = attachment.content
            while len(self.charts) > KEPT_CHARTS:
                self.charts.popitem(last=False)
            chart = {"type": "Image", "url": f"{self.public_url}{CHART_PATH}{token}.png",
                     "altText": "Weekly report chart", "size": "Stretch"}
            body[-1] = {**body[-1], "body": [*body[-1]["body"], chart]}
        elif attachment is not None:
            log.info("the weekly report goes to Teams without its chart: set CRIER_PUBLIC_URL")
        ids = [await self.post(ref, cards.activity(c, message)) for c in body]
        return ",".join(ids)


def make_platform(settings: Settings) -> TeamsPlatform:
    if not (settings.teams_app_id and settings.teams_app_password):
        raise ValueError("TEAMS_APP_ID and TEAMS_APP_PASSWORD are not set")
    tokens = TokenProvider(settings.teams_token_endpoint, settings.teams_app_id,
                           settings.teams_app_password)
    return TeamsPlatform(tokens, settings.teams_app_id, public_url=settings.public_url)
