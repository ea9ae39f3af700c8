"""The slash commands Crier registers in Slack, and the names Slack keeps for itself."""

from __future__ import annotations

from bot.grammar import USAGE

#: Slack's own slash commands (Slack Help Center, "Use built-in slash commands"):
#: an app cannot take these names, so Crier registers no shortcut among them.
SLACK_BUILT_IN = frozenset({
    "active", "apps", "archive", "away", "call", "collapse", "dm", "expand", "feed",
    "feedback", "invite", "invite_people", "join", "kick", "leave", "me", "msg", "mute",
    "open", "prefs", "remind", "remove", "rename", "search", "shortcuts", "shrug", "star",
    "status", "topic", "who",
})
#: The slash commands Crier's Slack app registers (manifest.yml lists exactly these).
SLACK_SHORTCUTS = tuple(name for name in USAGE if name not in SLACK_BUILT_IN)
