"""The ``crier`` command line (Typer)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path

import typer

from announcements.clock import SystemClock
from announcements.errors import CrierError
from bot.cli_checks import days_back, output_file
from bot.cli_support import database as _database
from bot.cli_support import err, friendly, out
from bot.cli_support import settings as _settings
from bot.directory_cli import directory_app, quota_app, roles_app
from bot.logs import configure_logging, uvicorn_options
from bot.settings import Settings
from bot.teams.cli import teams_app
from storage.db import Database

# Plain Click help (rich_markup_mode=None, inherited by every sub-command): Typer's
# Rich panels label each flag `<bool>`, which reads as if it took a value.
app = typer.Typer(help="Crier: announcements, polls and read receipts in chat.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)
report_app = typer.Typer(help="Reports.", no_args_is_help=True)
app.add_typer(directory_app, name="directory")
app.add_typer(roles_app, name="roles")
app.add_typer(report_app, name="report")
app.add_typer(quota_app, name="quota")
app.add_typer(teams_app, name="teams")

DEMO_DB = "crier-demo.db"
SAMPLE_COMPANY = Path(__file__).parent / "data" / "sample_company.csv"
DEMO_USER = "casey.comms@example.com"


@app.command()
@friendly
def init() -> None:
    """Create the database, or upgrade it to the newest schema."""
    settings = _settings()
    db = Database(settings.database_url)
    revision = db.migrate()
    from storage.db import describe

    out.print(f"Database {describe(db.url)} is at schema revision {revision}.")


def _console(settings: Settings, db: Database, user: str) -> None:
    from bot.app import build
    from bot.console import ConsolePlatform, ConsoleSession
    from bot.console.session import CONSOLE_HELP

    platform = ConsolePlatform()
    runtime = build(settings, {"console": platform}, db=db)
    person = runtime.crier.person(user)
    if person is None:
        raise CrierError(f"{user} is not an active person in the directory",
                         "Pick someone from your directory: crier console --as EMAIL")
    interactive = sys.stdin.isatty()
    runtime.scheduler.scheduler.reconcile()
    session = ConsoleSession(runtime.router, platform, runtime.engine, person.email,
                             scheduler=runtime.scheduler)
    if interactive:
        out.print(CONSOLE_HELP, markup=False)
        out.print(f"You are {person.name} <{person.email}>.", markup=False)
    # Bytes, decoded by the session; it delivers while it waits for the next line.
    try:
        asyncio.run(session.serve(sys.stdin.buffer, interactive))
    except KeyboardInterrupt:  # Ctrl-C leaves like `quit`
        print(flush=True)


@app.command()
@friendly
def console(as_: str = typer.Option(DEMO_USER, "--as", help="who you are in the chat")) -> None:
    """A local chat on stdin/stdout: type commands, switch users, click buttons."""
    settings = _settings()
    _console(settings, _database(settings), as_)


@app.command()
@friendly
def demo(
    db_file: Path = typer.Option(Path(DEMO_DB), "--db", help="SQLite file for the demo"),
    fresh: bool = typer.Option(False, "--fresh", help="start again from the sample data"),
) -> None:
    """Zero set-up: a sample company of 320 people, and a console as its comms lead."""
    from sqlmodel import select

    from announcements.directory import import_csv
    from storage.models import Person

    output_file(db_file, "--db", "demo.db")
    if fresh and db_file.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    # The demo shows sends at once, whatever the hour: quiet hours stay off unless set.
    env = _settings()
    settings = replace(env, database_url=f"sqlite:///{db_file}",
                       working_hours=os.environ.get("CRIER_WORKING_HOURS", "off"))
    db = _database(settings)
    with db.session() as s:
        empty = s.exec(select(Person).limit(1)).first() is None
    if empty:
        result = import_csv(db, SAMPLE_COMPANY, SystemClock())
        err.print(f"Demo company loaded into {db_file}: {result.summary()}.")
    _console(settings, db, DEMO_USER)


@app.command()
@friendly
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
    telegram_polling: bool = typer.Option(
        False, "--telegram-polling", help="poll Telegram instead of receiving its webhook"),
    slack_socket_mode: bool = typer.Option(
        False, "--slack-socket-mode",
        help="receive Slack over a WebSocket (SLACK_APP_TOKEN): no public URL needed"),
    no_delivery: bool = typer.Option(
        False, "--no-delivery", help="HTTP only: run the delivery engine and the scheduler "
        "elsewhere, with `crier worker`"),
) -> None:
    """The HTTP server (Slack, Telegram and Teams webhooks, /healthz, /metrics) with the
    delivery workers and the scheduler (unless --no-delivery)."""
    import uvicorn

    from bot.serve import build_server

    settings = _settings()
    if slack_socket_mode and not (settings.slack_enabled and settings.slack_app_token):
        raise CrierError("--slack-socket-mode needs SLACK_APP_TOKEN, SLACK_BOT_TOKEN and "
                         "SLACK_SIGNING_SECRET",
                         "Create an app-level token (xapp-…) with connections:write under "
                         "Basic Information → App-Level Tokens; see docs/slack.md.")
    configure_logging(settings)
    db = _database(settings)
    server_app, enabled = build_server(settings, db, telegram_polling=telegram_polling,
                                       slack_socket_mode=slack_socket_mode,
                                       run_workers=not no_delivery)
    log = logging.getLogger("crier")  # in CRIER_LOG_FORMAT, like every line of serve
    if not enabled:
        log.warning("No chat platform is configured: set SLACK_BOT_TOKEN and "
                    "SLACK_SIGNING_SECRET, or TELEGRAM_BOT_TOKEN (see README).")
    else:
        log.info("Platforms on: %s", ", ".join(enabled))
    if no_delivery:
        log.info("Delivery and scheduling are off here: run `crier worker` next to it.")
    try:
        uvicorn.run(server_app, host=host, port=port, **uvicorn_options(settings))
    finally:
        db.dispose()


@app.command()
@friendly
def worker() -> None:
    """The delivery engine and the scheduler, without an HTTP server (next to
    `crier serve --no-delivery`). Stops on SIGTERM or Ctrl-C."""
    from bot.serve import platforms_for, run_worker

    settings = _settings()
    configure_logging(settings)
    db = _database(settings)
    log = logging.getLogger("crier")
    enabled = sorted(platforms_for(settings))
    log.info("Platforms on: %s", ", ".join(enabled) if enabled else "none")
    try:
        asyncio.run(run_worker(settings, db))
    finally:
        db.dispose()


@app.command()
@friendly
def doctor() -> None:
    """Check this installation: configuration, database, platform credentials, public URLs;
    one line each, and what to fix (exit status 1 when something must be fixed)."""
    from bot.doctor import FIX, configuration, diagnose

    settings = _settings()
    for line in configuration(settings):
        out.print(line, soft_wrap=True, markup=False)
    findings = diagnose(settings)
    for finding in findings:
        out.print(finding.line(), soft_wrap=True, markup=False)
    if any(f.mark == FIX for f in findings):
        raise typer.Exit(1)


@app.command("backup")
@friendly
def backup_command(
    file: Path = typer.Argument(..., dir_okay=False, help="where to write the copy"),
) -> None:
    """A consistent copy of the SQLite database, safe while Crier runs (PostgreSQL: the
    pg_dump line to use)."""
    from bot.backup import backup

    out.print(backup(_settings().database_url, file).summary(), soft_wrap=True, markup=False)

@report_app.command("weekly")
@friendly
def report_weekly(
    out_file: Path | None = typer.Option(None, "--out", help="write Markdown here; the chart "
                                         "goes next to it as .png"),
    days: int = typer.Option(7, help="how many days back"),
) -> None:
    """The weekly summary: deliveries, acknowledgements by department, polls, failures."""
    from announcements import report_view
    from announcements.reports import weekly
    from bot.console.render import report as console_report

    days_back(days)
    if out_file is not None:
        output_file(out_file)
    db = _database(_settings())
    report = weekly(db, SystemClock().now(), days=days, chart=out_file is not None)
    view = report_view.build(report)
    if out_file is None:
        out.print(console_report(view), markup=False)
        return
    chart = out_file.with_suffix(".png")
    if report.chart_png:
        chart.write_bytes(report.chart_png)
    out_file.write_text(report_view.markdown(view, chart.name if report.chart_png else None),
                        encoding="utf-8")
    out.print(f"Wrote {out_file} and {chart}.")


@app.command("export")
@friendly
def export(
    what: str = typer.Argument(..., help="receipts, votes, or pending ID"),
    announcement: str | None = typer.Argument(None, help="for pending: the announcement number",
                                              show_default=False),
    out_file: Path | None = typer.Option(None, "--out", help="CSV file (default: stdout)"),
    days: int | None = typer.Option(None, help="only announcements sent in the last N days"),
) -> None:
    """CSV of acknowledgements, poll answers (anonymous polls: counts only), or who has
    not acknowledged an announcement yet (`pending ID`, the follow-up list)."""
    from datetime import timedelta

    from announcements import export as exports

    kinds = {"receipts": exports.export_receipts, "votes": exports.export_votes}
    if what.lower() not in (*kinds, "pending"):
        raise CrierError(f"cannot export `{what}`", "Use `crier export receipts`, "
                         "`crier export votes` or `crier export pending ID`.")
    if (what.lower() == "pending") != (announcement is not None):
        raise CrierError("`crier export pending` needs an announcement number; the others "
                         "take none", "Type e.g. `crier export pending 12` or "
                         "`crier export receipts`.")
    if days is not None:
        days_back(days)
    if out_file is not None:
        output_file(out_file)
    db = _database(_settings())
    since = SystemClock().now() - timedelta(days=days) if days else None
    if announcement is not None:
        from bot.grammar import parse_id

        ann_id = parse_id(announcement, usage=(
            "Type the number `/crier list` shows, e.g. `crier export pending 12`."))
        exports.check_follow_up(db, ann_id)  # a bad number opens no file
        kinds["pending"] = partial(exports.export_pending, announcement_id=ann_id)
    if out_file is None:
        kinds[what.lower()](db, sys.stdout, since)
        return
    with out_file.open("w", newline="", encoding="utf-8") as fh:
        n = kinds[what.lower()](db, fh, since)
    out.print(f"Wrote {n} rows to {out_file}.")


def _mount_optional() -> None:
    """Platform command groups join when their packages are installed."""
    from bot.governance_cli import register  # crier audit, privacy …, retention run

    register(app, friendly, _settings, _database)
    try:
        from bot.telegram.cli import telegram_cli
    except ImportError:  # pragma: no cover - the package ships with Crier
        return
    app.add_typer(telegram_cli, name="telegram", help="Telegram: webhook and invites.")


_mount_optional()


def main() -> None:
    try:
        app()
    except CrierError as exc:  # a bad setting met by a command outside ``friendly``
        err.print(f"✗ {exc.message}", soft_wrap=True, markup=False)
        if exc.hint:
            err.print(exc.hint, soft_wrap=True, markup=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
