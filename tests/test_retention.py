"""Retention: old deliveries, receipts and votes are purged by the daily job and by
``crier retention run``; their counts stay readable in status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select
from typer.testing import CliRunner

from announcements import audit
from announcements.clock import ManualClock
from announcements.errors import CrierError
from announcements.retention import MIN_RETENTION_DAYS
from bot.cli import app
from bot.settings import Settings, load_settings
from storage.models import Announcement, Delivery, Receipt, Vote
from tests.factories import APPROVER
from tests.harness import make_chat

runner = CliRunner()
ENG1, ENG2 = "eng1@example.com", "eng2@example.com"


def rows(db, ann: int) -> tuple[int, int, int]:
    with db.session() as s:
        return tuple(s.execute(select(func.count()).select_from(model).where(
            model.announcement_id == ann)).scalar_one()  # type: ignore[attr-defined]
            for model in (Delivery, Receipt, Vote))  # type: ignore[return-value]


async def old_announcements(db, clock):
    chat = make_chat(db, clock, settings=Settings(database_url=str(db.url), retention_days=400))
    ann = await chat.approved("/announce to:Engineering ack Fire drill")
    poll = await chat.approved('/poll to:Engineering "Lunch?" "Pizza" "Salad"')
    await chat.click(ENG1, f"ack:{ann}")
    await chat.click(ENG1, f"vote:{poll}:2")
    await chat.click(ENG2, f"vote:{poll}:2")
    await chat.tick()
    return chat, ann, poll


async def test_the_daily_job_purges_old_rows_and_status_keeps_the_counts(db, clock):
    chat, ann, poll = await old_announcements(db, clock)
    assert "Acknowledged 1 of 7" in await chat.say(APPROVER.email, f"/crier status {ann}")
    before = rows(db, ann)
    assert before[0] > 7 and before[1:] == (1, 0)  # 7 recipients, approval requests; 1 receipt

    clock.advance(timedelta(days=399))
    await chat.tick()
    assert rows(db, ann)[1] == 1  # not yet: 399 days

    clock.advance(timedelta(days=2))
    await chat.tick()  # the retention job fires at 03:30 UTC (coalesced: once)
    assert rows(db, ann) == (0, 0, 0) and rows(db, poll) == (0, 0, 0)
    status = await chat.say(APPROVER.email, f"/crier status {ann}")
    assert "Archived on" in status and "7 delivered" in status and "1 acknowledged" in status
    poll_status = await chat.say(APPROVER.email, f"/crier status {poll}")
    assert "Archived answers: 2 people" in poll_status and "2. Salad: 2" in poll_status
    with db.session() as s:
        closed = s.get(Announcement, poll)
        assert closed is not None and closed.closed_at is not None  # nobody answers twice
        purges = [e for e in audit.entries(s, audit.Query()) if e.action == "retention_purged"]
    assert len(purges) == 1 and purges[0].detail["announcements"] == 2

    clock.advance(timedelta(days=1))
    await chat.tick()  # the next day: nothing more to purge, the tally is not doubled
    assert "7 delivered" in await chat.say(APPROVER.email, f"/crier status {ann}")
    assert "was not sent to you" in await chat.click(ENG2, f"ack:{ann}")  # archived


async def test_recent_activity_keeps_an_announcement_whole(db, clock):
    chat, ann, poll = await old_announcements(db, clock)
    clock.advance(timedelta(days=300))
    await chat.click(ENG2, f"ack:{ann}")  # a late acknowledgement: activity is recent
    clock.advance(timedelta(days=150))
    await chat.tick()
    assert rows(db, ann)[1:] == (2, 0)  # kept whole: its last activity is 150 days old
    assert rows(db, ann)[0] > 7
    assert rows(db, poll) == (0, 0, 0)


async def test_crier_retention_run_uses_the_configured_days(db, db_url):
    # The CLI runs on the real clock: the scenario happened half a year ago, on a
    # Wednesday afternoon (inside working hours, so everything was delivered).
    back = datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0) \
        - timedelta(days=182)
    clock = ManualClock(back - timedelta(days=(back.weekday() - 2) % 7))
    chat, ann, _ = await old_announcements(db, clock)
    age = (datetime.now(UTC) - clock.now()).days
    env = {"CRIER_DATABASE_URL": db_url}
    kept = runner.invoke(app, ["retention", "run"], env={**env, "CRIER_RETENTION_DAYS":
                                                          str(age + 30)})
    assert kept.exit_code == 0, kept.output
    assert f"Nothing is older than {age + 30} days" in kept.output and rows(db, ann)[1] == 1

    purged = runner.invoke(app, ["retention", "run"],
                           env={**env, "CRIER_RETENTION_DAYS": str(age - 30)})
    assert purged.exit_code == 0, purged.output
    assert f"Purged the rows of 2 announcement(s) older than {age - 30} days" in purged.output
    assert rows(db, ann) == (0, 0, 0)


@pytest.mark.parametrize("raw", ["30", "abc", "-1"])
def test_a_retention_shorter_than_the_reports_reach_is_refused(raw):
    with pytest.raises(CrierError) as refused:
        load_settings({"CRIER_RETENTION_DAYS": raw}, dotenv=False)
    assert "CRIER_RETENTION_DAYS" in str(refused.value)
    assert str(MIN_RETENTION_DAYS) in str(refused.value) or "whole number" in str(refused.value)
    assert load_settings({}, dotenv=False).retention_days == 400
