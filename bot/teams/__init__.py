"""Microsoft Teams: Bot Framework activities in (``POST /api/messages``), Adaptive
Cards out through the connector, conversation references kept per person."""

from bot.teams.platform import TeamsPlatform, make_platform
from bot.teams.server import TeamsServer, plugin

__all__ = ["TeamsPlatform", "TeamsServer", "make_platform", "plugin"]
