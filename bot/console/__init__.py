"""The console adapter: a local chat on stdin/stdout, for the demo, scripts and tests."""

from bot.console.platform import ConsolePlatform
from bot.console.session import ConsoleSession

__all__ = ["ConsolePlatform", "ConsoleSession"]
