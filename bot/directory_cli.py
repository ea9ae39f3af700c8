"""``crier directory import|sync``, ``crier roles grant|revoke|list`` and
``crier quota set``: who is in the directory and what they may do."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from announcements.clock import SystemClock
from announcements.errors import CrierError
from bot.cli_support import database as _database
from bot.cli_support import friendly, out
from bot.cli_support import settings as _settings

directory_app = typer.Typer(help="The employee directory.", no_args_is_help=True)
roles_app = typer.Typer(help="Who may author, approve and administer.", no_args_is_help=True)
quota_app = typer.Typer(help="Authors' daily quotas on audience size.", no_args_is_help=True)


@directory_app.command("import")
@friendly
def directory_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="CSV with email,name,department[,location,title,timezone,"
                                     "slack_id,telegram_id,teams_id,roles]"),
    deactivate_missing: bool = typer.Option(
        False, "--deactivate-missing",
        help="a full import: deactivate active people who are not in the file"),
    new_departments: bool = typer.Option(
        False, "--new-departments",
        help="accept departments spelled close to existing ones (not typos)"),
    new_locations: bool = typer.Option(
        False, "--new-locations",
        help="accept locations spelled close to existing ones (not typos)"),
) -> None:
    """Add or update people from a CSV file. Nothing is written if any row is bad."""
    from announcements.directory import import_csv

    db = _database(_settings())
    result = import_csv(db, file, SystemClock(), deactivate_missing=deactivate_missing,
                        new_departments=new_departments, new_locations=new_locations)
    out.print(result.summary(), markup=False, soft_wrap=True)


@directory_app.command("sync")
@friendly
def directory_sync(platform: str = typer.Argument(..., help="slack or teams"),
                   full: bool = typer.Option(False, "--full", help="teams: read every user "
                                             "again instead of the changes since last time"),
                   ) -> None:
    """Pull people from a chat platform's directory."""
    settings = _settings()
    name = platform.lower()
    if name == "slack":
        from bot.slack.cli import sync as slack_sync

        slack_sync(settings, _database(settings))
        return
    if name == "teams":
        from bot.teams.graph import sync as teams_sync

        result, incremental = asyncio.run(teams_sync(settings, _database(settings),
                                                     SystemClock(), full=full))
        out.print(("Changes since the last sync: " if incremental else "")
                  + result.summary(), markup=False, soft_wrap=True)
        return
    raise CrierError(f"cannot sync from `{platform}`",
                     "Use `crier directory sync slack` or `crier directory sync teams`.")


@roles_app.command("grant")
@friendly
def roles_grant(email: str, role: str, scope: str = typer.Argument("*")) -> None:
    """Grant ROLE (author, approver, admin) over SCOPE (*, a department, loc:City)."""
    from announcements.directory import grant_role

    out.print(grant_role(_database(_settings()), email, role, scope, SystemClock()))


@roles_app.command("revoke")
@friendly
def roles_revoke(email: str, role: str, scope: str = typer.Argument("*")) -> None:
    """Take a role back."""
    from announcements.directory import revoke_role

    out.print(revoke_role(_database(_settings()), email, role, scope, SystemClock()))


@roles_app.command("list")
@friendly
def roles_list() -> None:
    """Who holds which role over which scope."""
    from rich.table import Table

    from announcements.directory import list_roles

    holders = list_roles(_database(_settings()))
    if not holders:
        out.print("Nobody holds a role yet. Grant one with "
                  "`crier roles grant EMAIL ROLE [SCOPE]`.", markup=False)
        return
    table = Table(title=f"Roles ({len(holders)} grants)", title_justify="left")
    for column in ("Role", "Scope", "Name", "Email"):
        table.add_column(column)
    for h in holders:
        name = h.name if h.active else f"{h.name} (inactive)"
        table.add_row(h.role, h.scope_text, name, h.email)
    out.print(table)


@quota_app.command("set")
@friendly
def quota_set(email: str, recipients: str = typer.Argument(..., help="a number, or off")) -> None:
    """Let EMAIL's announcements reach at most RECIPIENTS people a day (off: no quota)."""
    from announcements.quota import parse_quota, set_quota

    limit = parse_quota(recipients)
    out.print(set_quota(_database(_settings()), email, limit, "cli", SystemClock().now()),
              markup=False)
