"""Telegram: python-telegram-bot v22 over the Bot API (``TELEGRAM_API_URL``).

- ``make_platform(settings)``: the ``ChatPlatform`` the delivery engine sends through.
- ``plugin(runtime, polling=False)``: ``POST /telegram/webhook`` and long polling.
- ``bot.telegram.cli.telegram_cli``: ``crier telegram set-webhook URL | invite EMAIL``.
"""

from bot.telegram.platform import TelegramPlatform, make_platform
from bot.telegram.server import plugin

__all__ = ["TelegramPlatform", "make_platform", "plugin"]
