"""``crier telegram set-webhook URL`` and ``crier telegram invite EMAIL``."""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

import typer
from rich.console import Console

from announcements.clock import SystemClock
from announcements.errors import CrierError
from announcements.linking import create_invite
from announcements.ports import DeliveryError
from bot.settings import Settings, load_settings
from bot.telegram.handlers import ALLOWED_UPDATES
from bot.telegram.platform import call, make_bot
from storage.db import Database, DatabaseUnavailable

telegram_cli = typer.Typer(help="Telegram: webhook and invites.", no_args_is_help=True)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _fail(message: str, hint: str | None = None, code: int = 2) -> typer.Exit:
    err.print(f"✗ {message}", soft_wrap=True, markup=False)
    if hint:
        err.print(hint, soft_wrap=True, markup=False)
    return typer.Exit(code)


def _settings() -> Settings:
    settings = load_settings()
    if not settings.telegram_enabled:
        raise _fail("TELEGRAM_BOT_TOKEN is not set",
                    "Create a bot with @BotFather in Telegram and put its token in "
                    "TELEGRAM_BOT_TOKEN (environment or .env).")
    return settings


async def _username(settings: Settings) -> str:
    bot = make_bot(settings)
    try:
        await call(bot.initialize())
        return bot.username
    finally:
        await bot.shutdown()


async def _register(settings: Settings, url: str, secret: str) -> None:
    bot = make_bot(settings)
    try:
        await call(bot.initialize())
        await call(bot.set_webhook(url, secret_token=secret,
                                   allowed_updates=list(ALLOWED_UPDATES)))
    finally:
        await bot.shutdown()


@telegram_cli.command("set-webhook")
def set_webhook(url: str = typer.Argument(..., help="https://HOST/telegram/webhook")) -> None:
    """Tell Telegram to POST updates to URL, signed with TELEGRAM_WEBHOOK_SECRET."""
    settings = _settings()
    secret = settings.telegram_webhook_secret
    if not secret:
        raise _fail("TELEGRAM_WEBHOOK_SECRET is not set",
                    "Set it to a random string of letters, digits, _ and - (e.g. "
                    "`openssl rand -hex 32`); Crier rejects webhook calls without it.")
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.netloc:
        raise _fail(f"{url} is not an https:// URL",
                    "Telegram only delivers webhooks over HTTPS (ports 443, 80, 88 or 8443). "
                    "For a laptop, run `crier serve --telegram-polling` instead.")
    try:
        asyncio.run(_register(settings, url, secret))
    except DeliveryError as exc:
        raise _fail(f"Telegram refused the webhook: {exc}",
                    "Check TELEGRAM_BOT_TOKEN and that the URL is reachable from the "
                    "internet.") from None
    out.print(f"✓ Telegram will POST updates to {url} with the secret token. "
              "Run `crier serve` there.")


@telegram_cli.command("invite")
def invite(
    email: str = typer.Argument(..., help="the employee's work email"),
    bot_username: str | None = typer.Option(
        None, "--bot-username", help="the bot's @username, if Telegram cannot be asked"),
) -> None:
    """Print a one-time t.me link that links EMAIL's Telegram account (valid 7 days)."""
    settings = load_settings()
    username = (bot_username or "").lstrip("@")
    if not username:
        settings = _settings()
        try:
            username = asyncio.run(_username(settings))
        except DeliveryError as exc:
            raise _fail(f"cannot ask Telegram for the bot's name: {exc}",
                        "Pass it with --bot-username NAME.") from None
    try:
        db = Database(settings.database_url)
        db.check()
        issued = create_invite(db, SystemClock(), email, "telegram")
    except DatabaseUnavailable as exc:
        raise _fail(str(exc), code=1) from None
    except CrierError as exc:
        raise _fail(exc.message, exc.hint) from None
    expires = issued.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    out.print(f"Invite for {issued.person.name} <{issued.person.email}>, single use, "
              f"valid until {expires}:", soft_wrap=True)
    out.print(f"https://t.me/{username}?start={issued.code}", soft_wrap=True, markup=False)
    out.print("Give it only to them (it links whoever opens it first).", soft_wrap=True)
