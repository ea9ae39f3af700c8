"""Slack: slash commands, Block Kit messages, modals, the App Home and directory sync.

    make_platform(settings) -> SlackPlatform      the delivery engine's side
    plugin(runtime) -> Plugin                      POST /slack/events for ``crier serve``
    sync_directory(db, client, clock, field_map)   ``crier directory sync slack``
"""

from bot.slack.app import SlackBot, plugin
from bot.slack.platform import SlackPlatform, make_client, make_platform
from bot.slack.sync import FieldMap, SyncResult, sync_directory

__all__ = [
    "FieldMap",
    "SlackBot",
    "SlackPlatform",
    "SyncResult",
    "make_client",
    "make_platform",
    "plugin",
    "sync_directory",
]
