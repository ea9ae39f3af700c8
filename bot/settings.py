"""Configuration from the environment and ``./.env``, validated when a command starts.

Rule: every setting is checked at start-up; a bad value stops the command with one
line naming the variable, its value (a secret's value is never shown) and an example.
The environment wins over ``.env``; ``.env`` is read from the working directory. A
platform whose credentials are absent is simply off. Secrets never appear in ``repr``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from announcements.categories import DEFAULT_CATEGORIES, DEFAULT_OPTIONAL_DAILY_CAP
from announcements.errors import CrierError
from storage.db import DEFAULT_URL, DatabaseUnavailable, describe, normalize_url

#: The chat platforms Crier knows (``CRIER_PLATFORM_ORDER``, ``CRIER_RATE_LIMIT_<NAME>``).
PLATFORMS = ("slack", "teams", "telegram")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
SECRET_FIELDS = frozenset(
    {"slack_bot_token", "slack_signing_secret", "slack_app_token", "telegram_bot_token",
     "telegram_webhook_secret", "teams_app_password"}
)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    #: An app-level token (``xapp-…``): Slack over Socket Mode, no public URL needed.
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    telegram_bot_token: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    teams_app_id: str | None = None
    teams_app_password: str | None = None
    teams_tenant_id: str | None = None
    #: Client credentials for the Bot Framework and Graph (default: the tenant's
    #: Microsoft Entra endpoint, ``teams_token_endpoint``).
    teams_token_url: str | None = None
    #: Where the keys that sign Bot Framework requests are listed.
    teams_openid_metadata_url: str = (
        "https://login.botframework.com/v1/.well-known/openidconfiguration")
    teams_graph_url: str = "https://graph.microsoft.com/v1.0"
    #: The HTTPS address the platforms reach ``crier serve`` at (``crier doctor`` shows
    #: the webhook URLs under it).
    public_url: str | None = None
    #: Which platform a person reachable on several gets messages on.
    platform_order: tuple[str, ...] = ("slack", "teams", "telegram")
    log_level: str = "INFO"
    #: ``text`` (one line per record) or ``json`` (one JSON object per line).
    log_format: str = "text"
    #: When the weekly report is posted, and in which zone.
    report_schedule: str = "mon 09:00"
    report_timezone: str = "UTC"
    #: A report later than this many minutes says so.
    report_grace_minutes: int = 60
    #: Quiet hours: non-urgent messages wait for these hours ("off" disables).
    working_hours: str = "08:00-20:00"
    working_days: str = "mon-fri"
    #: Most nudges one acknowledgement request sends to a person.
    nudge_max: int = 3
    #: Recurring sends (every:, remind:) repeat at most this often (a duration).
    min_interval: str = "1h"
    #: Message categories, comma-separated; a trailing ! marks a mandatory one.
    categories: str = DEFAULT_CATEGORIES
    #: Most optional-category messages a person gets a day (more wait for the next day).
    optional_daily_cap: int = DEFAULT_OPTIONAL_DAILY_CAP
    #: Deliveries, receipts and votes are purged this many days after their last activity.
    retention_days: int = 400
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret)

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token)

    @property
    def teams_enabled(self) -> bool:
        return bool(self.teams_app_id and self.teams_app_password and self.teams_tenant_id)

    @property
    def teams_token_endpoint(self) -> str:
        """``TEAMS_TOKEN_URL``, else the tenant's Microsoft Entra token endpoint."""
        return self.teams_token_url or (
            f"https://login.microsoftonline.com/{self.teams_tenant_id}/oauth2/v2.0/token")

    def secrets(self) -> list[str]:
        """Every configured secret value (tokens, passwords), for log redaction."""
        found = [getattr(self, name) for name in SECRET_FIELDS if getattr(self, name)]
        try:
            password = normalize_url(self.database_url).password
        except DatabaseUnavailable:
            password = None
        if password:
            found.append(str(password))
        return found

    def shown(self, name: str) -> str:
        """A field's value as ``repr`` and ``crier doctor`` show it: secrets masked."""
        value = getattr(self, name)
        if name in SECRET_FIELDS and value:
            return mask(value)
        if name == "database_url":
            return _safe_url(value)
        return str(value) if not isinstance(value, tuple) else ",".join(value)

    def __repr__(self) -> str:
        shown = [f"{f.name}={self.shown(f.name)!r}" if f.name in _MASKED
                 else f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                 if f.name != "extra"]
        return "Settings(" + ", ".join(shown) + ")"

    __str__ = __repr__


_MASKED = SECRET_FIELDS | {"database_url"}


def mask(secret: str) -> str:
    """``***``, keeping only a Slack token's kind (``xoxb-``/``xapp-``), which is not secret."""
    kind = re.match(r"(xox[a-z]-|xapp-)", secret)
    return (kind.group(1) if kind else "") + "***"


def _safe_url(url: str) -> str:
    try:
        return describe(normalize_url(url))
    except DatabaseUnavailable:
        return "(not a database URL)"


ENV_NAMES = {
    "database_url": "CRIER_DATABASE_URL",
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_api_url": "SLACK_API_URL",
    "telegram_bot_token": "TELEGRAM_BOT_TOKEN",
    "telegram_webhook_secret": "TELEGRAM_WEBHOOK_SECRET",
    "telegram_api_url": "TELEGRAM_API_URL",
    "teams_app_id": "TEAMS_APP_ID",
    "teams_app_password": "TEAMS_APP_PASSWORD",
    "teams_tenant_id": "TEAMS_TENANT_ID",
    "teams_token_url": "TEAMS_TOKEN_URL",
    "teams_openid_metadata_url": "TEAMS_OPENID_METADATA_URL",
    "teams_graph_url": "TEAMS_GRAPH_URL",
    "public_url": "CRIER_PUBLIC_URL",
    "platform_order": "CRIER_PLATFORM_ORDER",
    "log_level": "CRIER_LOG_LEVEL",
    "log_format": "CRIER_LOG_FORMAT",
    "report_schedule": "CRIER_REPORT_SCHEDULE",
    "report_timezone": "CRIER_REPORT_TIMEZONE",
    "report_grace_minutes": "CRIER_REPORT_GRACE_MINUTES",
    "working_hours": "CRIER_WORKING_HOURS",
    "working_days": "CRIER_WORKING_DAYS",
    "nudge_max": "CRIER_NUDGE_MAX",
    "min_interval": "CRIER_MIN_INTERVAL",
    "categories": "CRIER_CATEGORIES",
    "optional_daily_cap": "CRIER_OPTIONAL_DAILY_CAP",
    "retention_days": "CRIER_RETENTION_DAYS",
}


def dotenv_path() -> Path:
    """The ``.env`` Crier reads: the one in the working directory, beside ``crier.db``."""
    return Path.cwd() / ".env"


def load_settings(env: Mapping[str, str] | None = None, dotenv: bool = True) -> Settings:
    """Read and check ``Settings`` from ``env`` (default: the process environment plus
    ``./.env``); a bad value raises ``CrierError`` with one line."""
    from bot import settings_checks as checks  # the domain's parsers

    if env is None:
        if dotenv:
            from dotenv import load_dotenv

            load_dotenv(dotenv_path(), override=False)
        env = os.environ
    values: dict[str, Any] = {}
    for name, var in ENV_NAMES.items():
        raw = env.get(var)
        if raw is None or raw.strip() == "":
            continue
        raw = raw.strip()
        parse: Callable[[str], Any] = checks.PARSERS.get(name, str)
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise setting_error(var, raw, str(exc), checks.EXAMPLES.get(name, ""),
                                secret=name in SECRET_FIELDS) from None
    extra = {k: v for k, v in env.items() if k.startswith("CRIER_")}
    settings = Settings(**values, extra=extra)
    checks.check_together(settings)
    return settings


def setting_error(var: str, raw: str, problem: str, example: str, *,
                  secret: bool = False) -> CrierError:
    """The one line a bad setting gets: the variable, its value, what is wrong, an example."""
    if secret:
        shown = f"{var} (value hidden)"
    elif var == "CRIER_DATABASE_URL":
        shown = f"{var}={_safe_url(raw)!r}" if "@" in raw else f"{var}={raw!r}"
    else:
        shown = f"{var}={raw!r}"
    return CrierError(f"{shown} {problem}; e.g. {var}={example}")


def finite(raw: str) -> float:
    """A finite number, or ValueError."""
    number = float(raw)
    if not math.isfinite(number):
        raise ValueError
    return number


def http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("is not an http(s):// URL")
    return raw
