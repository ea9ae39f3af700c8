"""What every ``crier`` command shares: the consoles, the one-line error handling
(``friendly``), and settings and database opened the same way."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from announcements.errors import CrierError
from bot.logs import install_redaction
from bot.settings import Settings, load_settings
from storage.db import Database, DatabaseUnavailable

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)
P = ParamSpec("P")
R = TypeVar("R")


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into one readable line and an exit code, not a traceback."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DatabaseUnavailable as exc:
            err.print(f"[red]✗[/red] {exc}", soft_wrap=True)
            raise typer.Exit(1) from None
        except CrierError as exc:
            err.print(f"✗ {exc.message}", soft_wrap=True, markup=False)
            if exc.hint:
                err.print(exc.hint, soft_wrap=True, markup=False)
            raise typer.Exit(2) from None

    return wrapper


def settings() -> Settings:
    settings = load_settings()
    install_redaction(settings.secrets())
    return settings


def database(settings: Settings, migrate: bool = True) -> Database:
    db = Database(settings.database_url)
    if migrate:
        db.migrate()
    else:
        db.check()
    return db
