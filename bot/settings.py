"""Configuration from the environment (and ``.env``). A platform whose
credentials are absent is simply off. Secrets never appear in ``repr``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from announcements.errors import CrierError
from storage.db import DEFAULT_URL

SECRET_FIELDS = frozenset(
    {"slack_bot_token", "slack_signing_secret", "telegram_bot_token",
     "telegram_webhook_secret", "teams_app_password"}
)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    telegram_bot_token: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    teams_app_id: str | None = None
    teams_app_password: str | None = None
    teams_tenant_id: str | None = None
    teams_bot_framework_url: str | None = None
    teams_graph_url: str = "https://graph.microsoft.com/v1.0"
    #: Which platform a person reachable on several gets messages on.
    platform_order: tuple[str, ...] = ("slack", "teams", "telegram")
    log_level: str = "INFO"
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
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret)

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token)

    @property
    def teams_enabled(self) -> bool:
        return bool(self.teams_app_id and self.teams_app_password)

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "***"
            shown.append(f"{f.name}={value!r}")
        return "Settings(" + ", ".join(shown) + ")"

    __str__ = __repr__


ENV_NAMES = {
    "database_url": "CRIER_DATABASE_URL",
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_api_url": "SLACK_API_URL",
    "telegram_bot_token": "TELEGRAM_BOT_TOKEN",
    "telegram_webhook_secret": "TELEGRAM_WEBHOOK_SECRET",
    "telegram_api_url": "TELEGRAM_API_URL",
    "teams_app_id": "TEAMS_APP_ID",
    "teams_app_password": "TEAMS_APP_PASSWORD",
    "teams_tenant_id": "TEAMS_TENANT_ID",
    "teams_bot_framework_url": "TEAMS_BOT_FRAMEWORK_URL",
    "teams_graph_url": "TEAMS_GRAPH_URL",
    "platform_order": "CRIER_PLATFORM_ORDER",
    "log_level": "CRIER_LOG_LEVEL",
    "report_schedule": "CRIER_REPORT_SCHEDULE",
    "report_timezone": "CRIER_REPORT_TIMEZONE",
    "report_grace_minutes": "CRIER_REPORT_GRACE_MINUTES",
    "working_hours": "CRIER_WORKING_HOURS",
    "working_days": "CRIER_WORKING_DAYS",
    "nudge_max": "CRIER_NUDGE_MAX",
    "min_interval": "CRIER_MIN_INTERVAL",
}
INT_FIELDS = frozenset({"report_grace_minutes", "nudge_max"})


def load_settings(env: Mapping[str, str] | None = None, dotenv: bool = True) -> Settings:
    """Read ``Settings`` from ``env`` (default: the process environment plus ``./.env``)."""
    if env is None:
        if dotenv:
            from dotenv import load_dotenv

            load_dotenv(override=False)
        env = os.environ
    # Field name -> value; the names come from ENV_NAMES, so the value types vary.
    values: dict[str, Any] = {}
    for name, var in ENV_NAMES.items():
        raw = env.get(var)
        if raw is None or raw.strip() == "":
            continue
        raw = raw.strip()
        if name == "platform_order":
            values[name] = tuple(p.strip().lower() for p in raw.split(",") if p.strip())
        elif name in INT_FIELDS:
            try:
                values[name] = int(raw)
            except ValueError:
                raise CrierError(f"{var}={raw!r} is not a whole number",
                                 f"Set {var} to e.g. 3.") from None
        else:
            values[name] = raw
    extra = {k: v for k, v in env.items() if k.startswith("CRIER_")}
    return Settings(**values, extra=extra)
