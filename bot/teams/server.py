"""What Teams adds to ``crier serve``: ``POST /api/messages``, where the Bot
Framework posts activities. Nothing is processed before ``bot.teams.auth`` has
accepted the request's token; an invoke is answered with its response body."""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import Runtime
from bot.server import Plugin
from bot.teams.auth import Refused, RequestValidator
from bot.teams.inbound import TeamsInbound
from bot.teams.platform import CHART_PATH, TeamsPlatform
from bot.teams.tokens import BOT_SCOPE, CredentialsRefused, TokenUnavailable

log = logging.getLogger("crier.teams")
#: Teams refuses activities over about 28 KB; a request far larger is not one.
MAX_BODY = 1_000_000


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status)


class TeamsServer:
    def __init__(self, runtime: Runtime, platform: TeamsPlatform) -> None:
        settings = runtime.settings
        assert settings.teams_app_id and settings.teams_tenant_id
        self.runtime = runtime
        self.platform = platform
        self.inbound = TeamsInbound(runtime, platform)
        self.validator = RequestValidator(settings.teams_openid_metadata_url,
                                          settings.teams_app_id, settings.teams_tenant_id)

    async def startup(self) -> None:
        """Open the HTTP client and fetch a token once, so a wrong password shows now."""
        await self.platform.start()
        self.validator.http = self.platform.http
        try:
            await self.platform.tokens.token(BOT_SCOPE)
            log.info("Teams: signed in as app %s", self.platform.app_id)
        except CredentialsRefused as exc:
            log.error("%s %s", exc.message, exc.hint)
        except TokenUnavailable as exc:
            log.warning("Teams: %s; will retry on the first send", exc)

    async def messages(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, "an activity is never this large")
        try:
            activity = json.loads(body)
        except ValueError:
            activity = None
        if not isinstance(activity, dict):
            # Still check the token first: an anonymous caller learns nothing.
            activity = {}
        try:
            await self.validator.check(request.headers.get("Authorization"), activity)
        except Refused as exc:
            log.warning("refused a request to /api/messages: %s", exc.reason)
            return _error(exc.status, exc.reason)
        if not activity.get("type"):
            return _error(400, "not a Bot Framework activity")
        answer = await self.inbound.handle(activity)
        if answer is not None:
            return JSONResponse(answer)
        return Response(status_code=200)


    async def chart(self, request: Request) -> Response:
        """A weekly report's chart, for the card that shows it."""
        name = request.path_params["name"]
        png = self.platform.charts.get(name.removesuffix(".png"))
        if png is None or not name.endswith(".png"):
            return _error(404, "no such chart (only the newest are kept)")
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": "public, max-age=604800"})


def plugin(runtime: Runtime) -> Plugin:
    """The Teams route for ``create_app``; needs ``runtime.platforms["teams"]``."""
    platform = runtime.platforms.get("teams")
    if not isinstance(platform, TeamsPlatform):
        raise ValueError("the runtime has no Teams platform; build it with make_platform()")
    server = TeamsServer(runtime, platform)
    runtime.extras["teams"] = server
    return Plugin(name="teams",
                  routes=[Route("/api/messages", server.messages, methods=["POST"]),
                          Route(CHART_PATH + "{name}", server.chart, methods=["GET"])],
                  startup=[server.startup], shutdown=[platform.stop],
                  info={"mode": "Bot Framework webhook"})
