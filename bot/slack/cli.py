"""``crier directory sync slack``: read the workspace's members into the directory."""

from __future__ import annotations

import asyncio

from rich.console import Console
from slack_sdk.errors import SlackApiError

from announcements.clock import SystemClock
from announcements.errors import CrierError
from bot.settings import Settings
from bot.slack.platform import make_client
from bot.slack.sync import FieldMap, SyncResult, sync_directory
from storage.db import Database

out = Console(highlight=False)

#: What to do when Slack refuses the sync, by Slack's error code.
HINTS = {
    "invalid_auth": "SLACK_BOT_TOKEN is not valid: copy the Bot User OAuth Token (xoxb-…) "
                    "from the app's OAuth & Permissions page.",
    "not_authed": "SLACK_BOT_TOKEN is empty.",
    "token_revoked": "The token was revoked: reinstall the app and copy the new token.",
    "missing_scope": "The app lacks a scope: add users:read and users:read.email (and "
                     "users.profile:read for custom fields) from manifest.yml, then reinstall.",
}


def sync(settings: Settings, db: Database) -> SyncResult:
    """Run the sync and print its summary; Slack's refusals become readable errors."""
    if not settings.slack_bot_token:
        raise CrierError("SLACK_BOT_TOKEN is not set",
                         "Set it to the app's Bot User OAuth Token (xoxb-…), in the "
                         "environment or .env. See docs/slack.md.")
    field_map = FieldMap.from_env(settings.extra)

    async def run() -> SyncResult:
        client = make_client(settings)
        return await sync_directory(db, client, SystemClock(), field_map)

    try:
        result = asyncio.run(run())
    except SlackApiError as exc:
        error = str(exc.response.get("error") or exc)
        raise CrierError(f"Slack refused the directory sync: {error}",
                         HINTS.get(error, "See docs/slack.md.")) from None
    out.print(result.summary(), markup=False, soft_wrap=True)
    return result
