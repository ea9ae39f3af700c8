"""``crier audit``, ``crier privacy export|erase|hold|release`` and ``crier retention run``.

``register`` mounts them on the main ``crier`` app with its error handling
(``friendly``: a refusal is one line and exit code 2, never a traceback).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from announcements import audit, privacy, retention
from announcements.clock import SystemClock
from announcements.errors import CrierError
from bot.cli_checks import output_file
from bot.settings import Settings
from storage.db import Database

out = Console(highlight=False, soft_wrap=True)
SUBJECT_FORMS = "an announcement number (12 or #12) or a person's email"


def subject_query(db: Database, raw: str) -> dict[str, int]:
    """``--subject``: an announcement number, or an email (events about that person)."""
    text = raw.strip()
    digits = text.removeprefix("#")
    if digits.isascii() and digits.isdigit() and len(digits) <= 19:
        return {"announcement_id": int(digits)}
    if "@" in text:
        with db.session() as s:
            return {"person_id": audit.person_id(s, text)}
    raise CrierError(f'--subject "{audit.neutralize(text)[:40]}" is neither {SUBJECT_FORMS}',
                     "e.g. --subject 12 or --subject ana@example.com")


def register(app: typer.Typer, friendly: Callable[[Any], Any],
             settings_of: Callable[[], Settings], database: Callable[[Settings], Database],
             ) -> None:
    def load() -> tuple[Settings, Database]:
        settings = settings_of()
        return settings, database(settings)

    privacy_app = typer.Typer(help="Privacy requests: export, erase, legal holds.",
                              no_args_is_help=True)
    retention_app = typer.Typer(help="Retention of deliveries, receipts and votes.",
                                no_args_is_help=True)
    app.add_typer(privacy_app, name="privacy")
    app.add_typer(retention_app, name="retention")

    @app.command("audit")
    @friendly
    def audit_command(
        since: str = typer.Option(None, "--since", help="from this UTC date, e.g. 2026-11-01"),
        actor: str = typer.Option(None, "--actor", help="events done by this email"),
        subject: str = typer.Option(None, "--subject", help=SUBJECT_FORMS),
        csv: bool = typer.Option(False, "--csv", help="CSV instead of lines"),
    ) -> None:
        """The audit trail: who did what, when (UTC), oldest first."""
        query: dict[str, Any] = {}
        if since is not None:
            query["since"] = audit.parse_since(since)  # before touching the database
        _, db = load()
        if subject is not None:
            query.update(subject_query(db, subject))
        with db.session() as s:
            if actor is not None:
                query["actor_id"] = audit.person_id(s, actor)
            rows = audit.entries(s, audit.Query(**query))
        if csv:
            typer.echo(audit.as_csv(rows), nl=False)
        else:
            out.print(audit.as_table(rows), markup=False)

    @privacy_app.command("export")
    @friendly
    def privacy_export(
        email: str,
        out_file: Path = typer.Option(None, "--out", help="write the JSON here"),
    ) -> None:
        """Everything Crier holds about EMAIL, as JSON."""
        if out_file is not None:
            output_file(out_file, example="person.json")
        _, db = load()
        data = privacy.export(db, SystemClock(), email)
        text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        if out_file is None:
            typer.echo(text, nl=False)
            return
        out_file.write_text(text, encoding="utf-8")
        out.print(f"Wrote everything about {data['person']['email']} to {out_file}.",
                  markup=False)

    @privacy_app.command("erase")
    @friendly
    def privacy_erase(email: str) -> None:
        """Remove or pseudonymize EMAIL everywhere; counts stay right. Refused under a hold."""
        _, db = load()
        out.print(privacy.erase(db, SystemClock(), email).summary(), markup=False)

    @privacy_app.command("hold")
    @friendly
    def privacy_hold(email: str) -> None:
        """Put EMAIL under a legal hold: erasing is refused until it is released."""
        _, db = load()
        out.print(privacy.hold(db, SystemClock(), email), markup=False)

    @privacy_app.command("release")
    @friendly
    def privacy_release(email: str) -> None:
        """End the legal hold on EMAIL."""
        _, db = load()
        out.print(privacy.release(db, SystemClock(), email), markup=False)

    @retention_app.command("run")
    @friendly
    def retention_run() -> None:
        """Purge deliveries, receipts and votes older than CRIER_RETENTION_DAYS now."""
        settings, db = load()
        days = settings.retention_days
        out.print(retention.run(db, SystemClock(), days).summary(days), markup=False)
