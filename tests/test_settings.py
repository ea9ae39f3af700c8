"""Configuration from the environment; secrets never printed."""

from __future__ import annotations

import pytest

from announcements.errors import CrierError
from bot.settings import load_settings


def test_platforms_are_on_only_with_their_credentials_and_secrets_stay_hidden():
    settings = load_settings({
        "CRIER_DATABASE_URL": "sqlite:///x.db",
        "SLACK_BOT_TOKEN": "xoxb-very-secret", "SLACK_SIGNING_SECRET": "sig-very-secret",
        "TELEGRAM_WEBHOOK_SECRET": "tg-very-secret",
        "CRIER_PLATFORM_ORDER": "Telegram, slack",
    })
    assert settings.slack_enabled and not settings.telegram_enabled and not settings.teams_enabled
    assert settings.platform_order == ("telegram", "slack")
    shown = repr(settings) + str(settings)
    assert "very-secret" not in shown and "slack_bot_token='***'" in shown


def test_a_bad_number_is_explained():
    with pytest.raises(CrierError, match="CRIER_NUDGE_MAX='lots' is not a whole number"):
        load_settings({"CRIER_NUDGE_MAX": "lots"})
