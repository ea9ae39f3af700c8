"""``crier teams install-for`` and ``crier teams package``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from announcements.errors import CrierError
from bot.cli_support import database as _database
from bot.cli_support import friendly, out
from bot.cli_support import settings as _settings

teams_app = typer.Typer(help="Microsoft Teams: the app package and installs.",
                        no_args_is_help=True)


@teams_app.command("install-for")
@friendly
def teams_install_for(
    emails: list[str] = typer.Argument(None, help="people to install Crier for"),
    everyone: bool = typer.Option(False, "--all", help="everyone Crier cannot reach in Teams"),
) -> None:
    """Install the Teams app for people who have not (through Microsoft Graph)."""
    from bot.teams.graph import install_for

    if bool(emails) == everyone:
        raise CrierError("name the people, or --all, not both",
                         "e.g. `crier teams install-for ana@example.com` or "
                         "`crier teams install-for --all`.")
    settings = _settings()
    done = asyncio.run(install_for(settings, _database(settings), emails or None))
    out.print(f"Installed for {len(done.installed)}; already installed for "
              f"{len(done.already)}; failed for {len(done.failed)}.", markup=False)
    for email in done.already:
        out.print(f"  {email}: already installed", markup=False)
    for line in done.failed:
        out.print(f"  {line}: failed", markup=False)
    if done.installed or done.already:
        out.print("Teams now sends Crier the install; those people are reachable once it "
                  "arrives (see `crier directory list`).", markup=False, soft_wrap=True)
    if done.failed:
        raise typer.Exit(1)


@teams_app.command("package")
@friendly
def teams_package(out_file: Path = typer.Option(..., "--out", help="the zip to write")) -> None:
    """The app package (manifest and icons) to upload in the Teams admin center."""
    from bot.teams.package import write

    written = write(_settings(), out_file)
    out.print(f"Wrote {written}: upload it in the Teams admin center (Manage apps → "
              "Upload new app), or in Teams (Apps → Manage your apps → Upload an app).",
              markup=False, soft_wrap=True)
