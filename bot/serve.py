"""Assemble ``crier serve``: every configured platform, its routes and the workers."""

from __future__ import annotations

from starlette.applications import Starlette

from announcements.ports import ChatPlatform
from bot.app import build
from bot.server import Plugin, create_app
from bot.settings import Settings
from storage.db import Database


def build_server(
    settings: Settings, db: Database, *, telegram_polling: bool = False,
    slack_socket_mode: bool = False,
) -> tuple[Starlette, list[str]]:
    platforms: dict[str, ChatPlatform] = {}
    factories = []
    if settings.slack_enabled:
        from bot.slack import make_platform as slack_platform
        from bot.slack import plugin as http_plugin
        from bot.slack.socket_mode import plugin as socket_plugin

        platforms["slack"] = slack_platform(settings)
        slack_plugin = socket_plugin if slack_socket_mode else http_plugin
        factories.append(lambda rt: slack_plugin(rt))
    if settings.telegram_enabled:
        from bot.telegram import make_platform as telegram_platform
        from bot.telegram import plugin as telegram_plugin

        platforms["telegram"] = telegram_platform(settings)
        factories.append(lambda rt: telegram_plugin(rt, polling=telegram_polling))
    if settings.teams_enabled:
        from bot.teams import make_platform as teams_platform
        from bot.teams import plugin as teams_plugin

        platforms["teams"] = teams_platform(settings)
        factories.append(lambda rt: teams_plugin(rt))
    runtime = build(settings, platforms, db=db)
    plugins: list[Plugin] = [make(runtime) for make in factories]
    return create_app(runtime, plugins), sorted(platforms)
