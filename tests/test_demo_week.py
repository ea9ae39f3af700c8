"""The bundled demo company through a scripted week, and the report a comms lead
would forward (`crier report weekly --out report.md`)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from announcements.directory import import_csv
from bot.app import build
from bot.cli import SAMPLE_COMPANY, app
from bot.console import ConsolePlatform
from bot.settings import Settings
from storage.models import Person
from tests.harness import Chat


async def test_a_week_on_the_demo_company(db, db_url, clock, tmp_path: Path):
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))  # Monday afternoon in Europe
    import_csv(db, SAMPLE_COMPANY, clock)
    runtime = build(Settings(database_url=db_url, working_hours="off"),
                    {"console": ConsolePlatform()}, clock=clock, db=db)
    chat = Chat(runtime, runtime.platforms["console"], clock)  # type: ignore[arg-type]
    with db.session() as s:
        staff = {p.email: p.department for p in s.execute(select(Person)).scalars()}
    rng = random.Random(3)

    policy = await chat.approved("/announce to:all ack urgent Updated travel policy: read it")
    for email, dept in staff.items():  # Engineering reads least, Finance most
        if rng.random() < {"Engineering": 0.4, "Finance": 0.95}.get(dept, 0.7):
            await chat.click(email, f"ack:{policy}")
    clock.advance(timedelta(days=1))
    poll = await chat.approved(
        '/poll to:Sales,Marketing anonymous "Offsite location?" "Lisbon" "Prague" "Online"')
    voters = [e for e, d in staff.items() if d in ("Sales", "Marketing")][:40]
    for i, email in enumerate(voters):
        await chat.click(email, f"vote:{poll}:{1 + i % 3}")
    clock.advance(timedelta(days=2))

    out = tmp_path / "report.md"
    result = CliRunner().invoke(app, ["report", "weekly", "--out", str(out)],
                                env={"CRIER_DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "![Acknowledgement and poll chart](report.png)" in text  # the PNG is linked
    assert "Recipients: 410" in text  # 320 people + 90 in Sales and Marketing
    table = text.split("## Acknowledgement by department")[1].split("##")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1].startswith("| Engineering |") and rows[-1].startswith("| Finance |")
    assert f"#{policy} Updated travel policy" in text.split("Urgent items")[1]
    assert f"## Poll #{poll}: Offsite location? (anonymous)\n\n_40 of 90 answered_" in text
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
