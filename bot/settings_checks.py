"""What a valid value of each setting is; ``bot.settings`` applies these at start-up.

The domain keeps its own parsers (quiet hours, schedules, time zones, the delivery
engine's numbers and rate limits); this module calls them and turns their refusal
into the one-line message of ``bot.settings.setting_error``. It also holds what
the parsers cannot know: ranges (a concurrency of 0 would never send), known
platform names, token shapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from announcements.categories import Categories
from announcements.delivery.config import CeilingBelowRate
from announcements.delivery.engine import ENV as ENGINE_ENV
from announcements.delivery.engine import RATE_PREFIX, EngineConfig, parse_limits
from announcements.errors import CrierError
from announcements.quiet import parse_quiet_hours
from announcements.retention import DEFAULT_RETENTION_DAYS, MIN_RETENTION_DAYS
from announcements.timespec import EVERY_FORMS, require_every, zone
from bot.settings import (
    LOG_FORMATS,
    LOG_LEVELS,
    PLATFORMS,
    Settings,
    finite,
    http_url,
    setting_error,
)
from storage.db import DatabaseUnavailable, normalize_url

#: An Azure app id or tenant id.
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
#: The settings that turn Teams on: all or none.
TEAMS_REQUIRED = ("TEAMS_APP_ID", "TEAMS_APP_PASSWORD", "TEAMS_TENANT_ID")


def _database_url(raw: str) -> str:
    try:
        normalize_url(raw)
    except DatabaseUnavailable:
        raise ValueError("is not a database URL") from None
    return raw


def _public_url(raw: str) -> str:
    http_url(raw)
    if not raw.startswith("https://"):
        raise ValueError("must be the https:// address Slack and Telegram reach")
    return raw.rstrip("/")


def _shaped(pattern: str, what: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not re.fullmatch(pattern, raw):
            raise ValueError(what)
        return raw

    return parse


def _platforms(raw: str) -> tuple[str, ...]:
    names = tuple(p.strip().lower() for p in raw.split(",") if p.strip())
    unknown = [n for n in names if n not in PLATFORMS]
    if unknown or not names:
        raise ValueError(f"names {', '.join(unknown) or 'no platform'}; "
                         f"the platforms are {', '.join(PLATFORMS)}")
    return names


def _categories(raw: str) -> str:
    try:
        Categories.parse(raw)
    except ValueError as exc:
        raise ValueError(f"is not a category list: {exc}") from None
    return raw


def _choice(options: tuple[str, ...], upper: bool) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.upper() if upper else raw.lower()
        if value not in options:
            raise ValueError(f"is not one of {', '.join(options)}")
        return value

    return parse


def _whole(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("is not a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"is not between {low} and {high}")
        return value

    return parse


def _domain(check: Callable[[str], object], problem: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        try:
            check(raw)
        except CrierError:
            raise ValueError(problem) from None
        return raw

    return parse


#: Field name -> parser: returns the value, or raises ValueError saying what is wrong.
PARSERS: dict[str, Callable[[str], Any]] = {
    "database_url": _database_url,
    "slack_bot_token": _shaped(r"xoxb-[A-Za-z0-9-]+", "is not a bot token (xoxb-…)"),
    "slack_app_token": _shaped(r"xapp-[A-Za-z0-9-]+", "is not an app-level token (xapp-…)"),
    "slack_api_url": http_url,
    "telegram_bot_token": _shaped(r"\d+:[A-Za-z0-9_-]+", "is not a BotFather token"),
    "telegram_webhook_secret": _shaped(r"[A-Za-z0-9_-]{1,256}",
                                       "may hold only letters, digits, _ and - (1-256)"),
    "telegram_api_url": http_url,
    "teams_app_id": _shaped(GUID, "is not an Azure app id (a GUID)"),
    "teams_tenant_id": _shaped(GUID, "is not a Microsoft Entra tenant id (a GUID)"),
    "teams_token_url": http_url,
    "teams_openid_metadata_url": http_url,
    "teams_graph_url": http_url,
    "public_url": _public_url,
    "platform_order": _platforms,
    "log_level": _choice(LOG_LEVELS, upper=True),
    "log_format": _choice(LOG_FORMATS, upper=False),
    "report_schedule": _domain(require_every, f"is not a schedule ({EVERY_FORMS})"),
    "report_timezone": _domain(zone, "is not an IANA time zone"),
    "report_grace_minutes": _whole(0, 7 * 24 * 60),
    "working_hours": _domain(lambda s: parse_quiet_hours(s, None),
                             "is not a range of the day (or off)"),
    "working_days": _domain(lambda s: parse_quiet_hours(None, s), "is not a list of days"),
    "nudge_max": _whole(0, 100),
    "categories": _categories,
    "optional_daily_cap": _whole(1, 100),
    "retention_days": _whole(MIN_RETENTION_DAYS, 100 * 366),
}
EXAMPLES = {
    "database_url": "sqlite:///./crier.db",
    "slack_bot_token": "xoxb-… (OAuth & Permissions → Bot User OAuth Token)",
    "slack_app_token": "xapp-… (Basic Information → App-Level Tokens, scope "
                       "connections:write)",
    "slack_api_url": "https://slack.com/api/",
    "telegram_bot_token": "123456789:AA… (from @BotFather)",
    "telegram_webhook_secret": "a-long-random-string_42",
    "telegram_api_url": "https://api.telegram.org/bot",
    "teams_app_id": "00000000-0000-0000-0000-000000000000 (Azure bot → Configuration → "
                    "Microsoft App ID)",
    "teams_tenant_id": "00000000-0000-0000-0000-000000000000 (Microsoft Entra → Overview → "
                       "Tenant ID)",
    "teams_token_url": "https://login.microsoftonline.com/TENANT/oauth2/v2.0/token",
    "teams_openid_metadata_url": "https://login.botframework.com/v1/.well-known/"
                                 "openidconfiguration",
    "teams_graph_url": "https://graph.microsoft.com/v1.0",
    "public_url": "https://crier.example.com",
    "platform_order": ",".join(PLATFORMS),
    "log_level": "INFO",
    "log_format": "json",
    "report_schedule": "mon 09:00",
    "report_timezone": "Europe/Berlin",
    "report_grace_minutes": "60",
    "working_hours": "08:00-20:00",
    "working_days": "mon-fri",
    "nudge_max": "3",
    "categories": "general!,safety!,policy!,social,news,survey",
    "optional_daily_cap": "3",
    "retention_days": str(DEFAULT_RETENTION_DAYS),
}
#: The delivery engine's numbers: the least value that still delivers.
ENGINE_MINIMUM = {
    "CRIER_DELIVERY_CONCURRENCY": 1,
    "CRIER_DELIVERY_BATCH": 1,
    "CRIER_DELIVERY_MAX_ATTEMPTS": 1,
    "CRIER_DELIVERY_LEASE": 1,
    "CRIER_PROGRESS_INTERVAL": 0.5,
    "CRIER_PROGRESS_MIN_RECIPIENTS": 0,
}


def check_together(settings: Settings) -> None:
    """The checks that need more than one variable, and the engine's ``CRIER_*`` numbers."""
    env = settings.extra
    defaults = EngineConfig()
    for var, attr in ENGINE_ENV.items():
        raw = env.get(var, "").strip()
        if not raw:
            continue
        default = getattr(defaults, attr)
        example = default.total_seconds() if isinstance(default, timedelta) else default
        example_text = f"{example:g}" if isinstance(example, float) else str(example)
        try:
            number = finite(raw)
        except ValueError:
            raise setting_error(var, raw, "is not a number", example_text) from None
        if isinstance(default, int) and not number.is_integer():
            raise setting_error(var, raw, "is not a whole number", example_text)
        least = ENGINE_MINIMUM.get(var, 0)
        if number < least:
            raise setting_error(var, raw, f"must be at least {least:g}", example_text)
    for var, raw in env.items():
        if var.startswith(RATE_PREFIX) and raw.strip():
            _check_rate(var, raw.strip())
    _check_teams(settings)


def _check_teams(settings: Settings) -> None:
    """Teams needs its app id, password and tenant together (or none of them)."""
    given = [settings.teams_app_id, settings.teams_app_password, settings.teams_tenant_id]
    if any(given) and not all(given):
        missing = [var for var, value in zip(TEAMS_REQUIRED, given, strict=True) if not value]
        raise CrierError(f"Teams needs {', '.join(TEAMS_REQUIRED)} together; "
                         f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                         "not set",
                         "Set all three (see README, Microsoft Teams), or none to leave "
                         "Teams off.")


def _check_rate(var: str, raw: str) -> None:
    platform = var.removeprefix(RATE_PREFIX).lower()
    example = f"{var}=8,1,10"
    if platform not in PLATFORMS:
        raise CrierError(f"{var}={raw!r} names no platform Crier knows; the platforms are "
                         f"{', '.join(PLATFORMS)}, e.g. CRIER_RATE_LIMIT_SLACK=8,1,10")
    problem = "should be PER_SECOND[,PER_CONVERSATION[,BURST[,CEILING]]]"
    try:
        parts = [finite(p) for p in raw.split(",")]
        limits = parse_limits(var, raw)
    except CeilingBelowRate as exc:
        raise CrierError(str(exc)) from None
    except ValueError:
        raise CrierError(f"{var}={raw!r} {problem}; e.g. {example}") from None
    if limits.per_second <= 0 or (len(parts) > 2 and (not parts[2].is_integer()
                                                      or limits.burst < 1)):
        raise CrierError(f"{var}={raw!r} needs PER_SECOND above 0 and a whole BURST of at "
                         f"least 1; e.g. {example}")
