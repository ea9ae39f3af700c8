"""``crier doctor``: is this installation ready, and if not, what to fix.

It prints the effective configuration (secrets masked, each value's source), then
one line per check: the database (reachable, schema at the newest revision), each
configured platform's credentials against its API (Slack ``auth.test`` and, for
Socket Mode, ``apps.connections.open``; Telegram ``getMe``; Teams a token from
``TEAMS_TOKEN_URL`` and the Bot Framework's keys) and the public URLs
the platforms must reach. ``✗`` lines must be fixed (exit status 1); ``!`` lines
are worth a look; nothing here writes to the database or to the platforms.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from announcements.delivery.engine import ENV as ENGINE_ENV
from announcements.delivery.engine import RATE_PREFIX
from bot.settings import ENV_NAMES, Settings, dotenv_path
from storage.db import MIGRATIONS, Database, DatabaseUnavailable, describe, normalize_url

OK, FIX, NOTE = "✓", "✗", "!"
#: ``CRIER_*`` families read outside ``Settings`` (Slack profile fields, the test suite).
OTHER_PREFIXES = ("CRIER_SLACK_", "CRIER_TEST_", RATE_PREFIX)


@dataclass(frozen=True)
class Finding:
    mark: str
    text: str

    def line(self) -> str:
        return f"{self.mark} {self.text}"


def configuration(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """``NAME=value (source)`` for every setting; secrets masked."""
    from dotenv import dotenv_values

    environ = os.environ if environ is None else environ
    path = dotenv_path()
    from_file = dotenv_values(path) if path.is_file() else {}

    def source(var: str) -> str:
        if not environ.get(var, "").strip():
            return "default"
        return ".env" if from_file.get(var) == environ.get(var) else "environment"

    lines = [f"Configuration ({path} {'read' if from_file else 'not found'}):"]
    for name, var in ENV_NAMES.items():
        unset = getattr(settings, name) is None
        lines.append(f"  {var} not set" if unset else
                     f"  {var}={settings.shown(name)} ({source(var)})")
    extra = sorted(v for v in settings.extra if v in ENGINE_ENV or v.startswith(RATE_PREFIX))
    lines += [f"  {var}={settings.extra[var]} ({source(var)})" for var in extra]
    return lines


def unknown_variables(settings: Settings) -> list[Finding]:
    import difflib

    known = set(ENV_NAMES.values()) | set(ENGINE_ENV)
    found = []
    for var in sorted(settings.extra):
        if var in known or var.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(var, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        found.append(Finding(NOTE, f"{var} is not a Crier setting and is ignored{hint}"))
    return found


def check_database(settings: Settings) -> Finding:
    url = normalize_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "").expanduser().resolve()
        if not path.is_file():
            return Finding(FIX, f"no SQLite database at {path} (working directory "
                                f"{Path.cwd()}): run `crier init` here, or fix "
                                "CRIER_DATABASE_URL")
        where = f"SQLite file {path}"
    else:
        where = describe(url)
    db = Database(settings.database_url)
    try:
        db.check()
        current = _current_revision(db)
    except DatabaseUnavailable as exc:
        return Finding(FIX, str(exc))
    finally:
        db.dispose()
    head = _head_revision()
    if current is None:
        return Finding(FIX, f"the database {where} is reachable but has no Crier schema: "
                            "run `crier init`")
    if current != head:
        return Finding(FIX, f"the database {where} is at schema revision {current}, the "
                            f"newest is {head}: run `crier init` (back it up first)")
    return Finding(OK, f"database {where}: reachable, schema at the newest revision {head}")


def _current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _head_revision() -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


async def check_slack(settings: Settings) -> list[Finding]:
    from bot.slack.platform import make_client

    if not settings.slack_bot_token and not settings.slack_signing_secret:
        return [Finding(NOTE, "Slack is off (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
                              "to turn it on)")] if settings.slack_app_token else []
    found = []
    if not settings.slack_signing_secret:
        found.append(Finding(FIX, "SLACK_SIGNING_SECRET is not set, so Slack stays off: copy "
                                  "it from the app's Basic Information page"))
    if not settings.slack_bot_token:
        return [*found, Finding(FIX, "SLACK_BOT_TOKEN is not set, so Slack stays off: copy the "
                                     "Bot User OAuth Token (xoxb-…) from OAuth & Permissions")]
    client = make_client(settings, retries=False)
    client.timeout = 10
    found.append(await _slack_check(
        client, client.auth_test(), "SLACK_BOT_TOKEN",
        "copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions",
        lambda r: f"@{r.get('user')} in {r.get('team')} (auth.test)"))
    if settings.slack_app_token and found[-1].mark == OK:
        found.append(await _slack_check(
            client, client.apps_connections_open(app_token=settings.slack_app_token),
            "SLACK_APP_TOKEN", "create an app-level token with the connections:write scope "
            "under Basic Information, and turn Socket Mode on",
            lambda r: "`crier serve --slack-socket-mode` can connect (apps.connections.open)"))
    return found


async def _slack_check(client: Any, request: Awaitable[Any], var: str, fix: str,
                       ok: Callable[[Any], str]) -> Finding:
    from slack_sdk.errors import SlackApiError, SlackClientError

    try:
        answer = await request
    except SlackApiError as exc:
        return Finding(FIX, f"Slack refused {var} ({exc.response.get('error')}): {fix}")
    except (SlackClientError, OSError, TimeoutError) as exc:
        return Finding(FIX, f"Slack is not reachable at {client.base_url} "
                            f"({type(exc).__name__}): check SLACK_API_URL and the network "
                            "(proxy, firewall)")
    return Finding(OK, f"Slack accepts {var}: {ok(answer)}")


async def check_telegram(settings: Settings) -> list[Finding]:
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError, TelegramError

    if not settings.telegram_bot_token:
        return []
    bot = Bot(settings.telegram_bot_token, base_url=settings.telegram_api_url)
    try:
        await bot.initialize()
        found = [Finding(OK, f"Telegram accepts TELEGRAM_BOT_TOKEN: @{bot.username} (getMe)")]
    except InvalidToken:
        return [Finding(FIX, "Telegram refused TELEGRAM_BOT_TOKEN: copy the token @BotFather "
                             "gave (/mybots → API Token)")]
    except NetworkError as exc:
        return [Finding(FIX, f"Telegram is not reachable at {settings.telegram_api_url} "
                             f"({exc.message}): check TELEGRAM_API_URL and the network")]
    except TelegramError as exc:
        return [Finding(FIX, f"Telegram answered getMe with an error ({exc.message})")]
    finally:
        await bot.shutdown()
    if not settings.telegram_webhook_secret:
        found.append(Finding(NOTE, "TELEGRAM_WEBHOOK_SECRET is not set: the webhook refuses "
                                   "every call; fine with `crier serve --telegram-polling`"))
    return found


async def check_teams(settings: Settings) -> list[Finding]:
    """The app's credentials at ``TEAMS_TOKEN_URL`` and the Bot Framework's signing keys."""
    if not settings.teams_enabled:
        return []
    from bot.teams.auth import Refused, RequestValidator
    from bot.teams.tokens import BOT_SCOPE, CredentialsRefused, TokenProvider, TokenUnavailable

    assert settings.teams_app_id and settings.teams_app_password and settings.teams_tenant_id
    async with httpx.AsyncClient(timeout=10) as http:
        tokens = TokenProvider(settings.teams_token_endpoint, settings.teams_app_id,
                               settings.teams_app_password, http)
        try:
            await tokens.token(BOT_SCOPE)
            found = [Finding(OK, f"Teams: app {settings.teams_app_id} gets Bot Framework "
                                 "tokens")]
        except CredentialsRefused as exc:
            found = [Finding(FIX, f"{exc.message}: {exc.hint}")]
        except TokenUnavailable as exc:
            found = [Finding(FIX, f"Teams: {exc}: check TEAMS_TOKEN_URL and the network")]
        validator = RequestValidator(settings.teams_openid_metadata_url, settings.teams_app_id,
                                     settings.teams_tenant_id, http)
        try:
            await validator.fetch()
            found.append(Finding(OK, "Teams: the Bot Framework's signing keys are readable"))
        except Refused as exc:
            found.append(Finding(FIX, f"Teams: {exc.reason}: check TEAMS_OPENID_METADATA_URL"))
    return found


async def check_public_urls(settings: Settings) -> list[Finding]:
    routes = []
    if settings.teams_enabled:
        routes.append(("Teams messaging endpoint (Azure bot → Configuration)", "/api/messages"))
    if settings.slack_enabled:
        routes.append(("Slack request URL (slash commands, interactivity, events; not needed "
                       "with --slack-socket-mode)", "/slack/events"))
    if settings.telegram_enabled:
        routes.append(("Telegram webhook (`crier telegram set-webhook URL`; not needed with "
                       "--telegram-polling)", "/telegram/webhook"))
    if not routes:
        return []
    public = settings.public_url
    if not public:
        return [Finding(NOTE, f"CRIER_PUBLIC_URL is not set: the {what} is "
                              f"https://YOUR-HOST{path}") for what, path in routes]
    found = [Finding(NOTE, f"{what}: {public}{path}") for what, path in routes]
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.get(f"{public}/healthz")
        mark = OK if answer.status_code == 200 else NOTE
        found.append(Finding(mark, f"{public}/healthz answers {answer.status_code}"))
    except httpx.HTTPError as exc:
        found.append(Finding(NOTE, f"{public}/healthz does not answer ({type(exc).__name__}): "
                                   "is `crier serve` running behind the proxy with TLS?"))
    return found


async def _platform_checks(settings: Settings) -> list[Finding]:
    slack, telegram, teams, urls = await asyncio.gather(
        check_slack(settings), check_telegram(settings), check_teams(settings),
        check_public_urls(settings))
    found = [*slack, *telegram, *teams, *urls]
    if not (settings.slack_enabled or settings.telegram_enabled or settings.teams_enabled):
        found.append(Finding(NOTE, "no chat platform is on: only `crier console` and the "
                                   "command line will work"))
    return found


def diagnose(settings: Settings) -> list[Finding]:
    """Every check, in the order they are shown."""
    return [*unknown_variables(settings), check_database(settings),
            *asyncio.run(_platform_checks(settings))]
