"""Scheduled sends, recurring reminders, nudges, quiet hours, polls closing and
restarts, all driven by a manual clock (no test waits for real time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.app import build
from bot.settings import Settings
from storage.models import Announcement, JobRun
from tests.factories import APPROVER, COMMS
from tests.harness import make_chat


def count(s, model, **where) -> int:
    query = select(func.count()).select_from(model)
    for column, value in where.items():
        query = query.where(getattr(model, column) == value)
    return s.execute(query).scalar_one()


MONDAY_0900_UTC = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def chat(db, clock):
    return make_chat(db, clock)


async def test_scheduled_send_goes_out_at_its_time_held_by_quiet_hours(chat, clock):
    # Casey is in London: "mon 09:00" is Monday 09:00 UTC.
    ann = await chat.approved("/announce to:Engineering at:mon 09:00 Office closed on Friday")
    listing = await chat.say(COMMS.email, "/crier list")
    assert f"#{ann} message · scheduled · Mon 2026-11-30 09:00 Europe/London" in listing
    assert chat.messages("eng1@example.com", ann) == []

    clock.set(MONDAY_0900_UTC - timedelta(minutes=1))
    await chat.tick()
    assert chat.messages("eng1@example.com", ann) == []  # not before its time

    clock.set(MONDAY_0900_UTC)
    await chat.tick()
    # Berlin (10:00 local) gets it now; New York (04:00 local) is in quiet hours.
    assert len(chat.messages("eng1@example.com", ann)) == 1
    assert chat.messages("eng2@example.com", ann) == []
    assert "pending 3" in await chat.say(COMMS.email, f"/crier status {ann}")

    clock.set(datetime(2026, 11, 30, 12, 59, tzinfo=UTC))
    await chat.tick()
    assert chat.messages("eng2@example.com", ann) == []
    clock.set(datetime(2026, 11, 30, 13, 0, tzinfo=UTC))  # 08:00 in New York
    await chat.tick()
    assert len(chat.messages("eng2@example.com", ann)) == 1
    assert "Sent 7 of 7" in await chat.say(COMMS.email, f"/crier status {ann}")


async def test_urgent_skips_quiet_hours(chat, clock):
    clock.set(datetime(2026, 11, 28, 3, 0, tzinfo=UTC))  # Saturday night
    ann = await chat.approved("/announce to:Engineering urgent Building evacuation drill")
    assert len(chat.messages("eng2@example.com", ann)) == 1


async def test_non_urgent_waits_for_monday_morning(chat, clock):
    clock.set(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))  # Saturday
    ann = await chat.approved("/announce to:Sales Weekly numbers are in")
    assert chat.messages("sales1@example.com", ann) == []
    clock.set(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))  # Monday 08:00 London
    await chat.tick()
    assert len(chat.messages("sales1@example.com", ann)) == 1


async def test_weekly_reminder_fires_on_four_consecutive_weeks(chat, clock, db):
    rem = await chat.approved("/remind to:Sales every:mon 09:00 Submit your forecast")
    assert "Repeats: every mon 09:00" in await chat.say(COMMS.email, f"/crier status {rem}")
    for week in range(4):
        monday = MONDAY_0900_UTC + timedelta(weeks=week)
        clock.set(monday - timedelta(seconds=1))
        await chat.tick()
        assert chat.texts("sales1@example.com").count("Submit your forecast") == week
        clock.set(monday)
        await chat.tick()
        assert chat.texts("sales1@example.com").count("Submit your forecast") == week + 1
    assert chat.texts("eng1@example.com").count("Submit your forecast") == 0
    with db.session() as s:
        occurrences = count(s, Announcement, parent_id=rem)
    assert occurrences == 4

    out = await chat.say(COMMS.email, f"/crier cancel {rem}")
    assert "cancelled" in out
    clock.set(MONDAY_0900_UTC + timedelta(weeks=4))
    await chat.tick()
    assert chat.texts("sales1@example.com").count("Submit your forecast") == 4


async def test_missed_runs_fire_once_on_restart(chat, clock, db):
    rem = await chat.approved("/remind to:Sales every:24h Fill in your timesheet")
    # The process is down for three days and a bit; on start-up it runs once.
    chat.runtime.scheduler.leadership.release()  # it died: its lock went with it
    clock.advance(timedelta(days=3, hours=1))
    restarted = build(Settings(database_url=str(db.url)), {"console": chat.platform},
                      clock=clock, db=db)
    restarted.scheduler.scheduler.reconcile()
    await restarted.scheduler.run_due()
    await restarted.scheduler.run_due()
    await chat.runtime.scheduler.run_due()  # the old instance, had it survived, adds nothing
    await restarted.engine.drain()
    assert chat.texts("sales1@example.com").count("Fill in your timesheet") == 1
    with db.session() as s:
        assert count(s, Announcement, parent_id=rem) == 1
    # And it keeps its rhythm: the next run is in the future, once.
    clock.advance(timedelta(days=1))
    await restarted.scheduler.run_due()
    await restarted.engine.drain()
    assert chat.texts("sales1@example.com").count("Fill in your timesheet") == 2


async def test_a_run_recorded_before_a_crash_is_not_repeated(chat, clock, db):
    rem = await chat.approved("/remind to:Sales every:24h Stand-up notes")
    sch = chat.runtime.scheduler.scheduler
    job = sch.store.lookup_job(f"reminder:{rem}")
    clock.set(job.next_run_time)
    # Crash after the run committed but before the job store moved the job on:
    sch.store.update_job = lambda job: (_ for _ in ()).throw(RuntimeError("killed"))
    with pytest.raises(RuntimeError):
        sch.tick()
    chat.runtime.scheduler.leadership.release()  # the crashed process's lock is gone
    fresh = build(Settings(database_url=str(db.url)), {"console": chat.platform},
                  clock=clock, db=db)
    await fresh.scheduler.run_due()
    with db.session() as s:
        assert count(s, Announcement, parent_id=rem) == 1
        assert count(s, JobRun, job_id=f"reminder:{rem}") == 1


async def test_nudges_reach_only_non_acknowledgers_and_stop_at_the_maximum(db, clock):
    clock.set(datetime(2026, 11, 30, 10, 0, tzinfo=UTC))  # Monday
    chat = make_chat(db, clock, Settings(database_url=str(db.url), nudge_max=2))
    ann = await chat.approved("/announce to:Engineering ack remind:24h Read the security policy")
    await chat.click("eng1@example.com", f"ack:{ann}")

    def nudges(email: str) -> int:
        return sum(1 for m in chat.messages(email, ann) if (m.title or "").startswith("Reminder"))

    clock.advance(timedelta(hours=24))
    await chat.tick()
    assert nudges("eng1@example.com") == 0
    assert nudges("eng3@example.com") == 1
    await chat.click("eng3@example.com", f"ack:{ann}")  # from the nudge
    await chat.tick()
    copies = chat.messages("eng3@example.com", ann)
    assert len(copies) == 2 and all(m.buttons == () for m in copies)  # the original too
    assert all("✓ Acknowledged" in (m.footer or "") for m in copies)

    clock.advance(timedelta(hours=24))
    await chat.tick()
    assert nudges("eng3@example.com") == 1  # acknowledged after the first nudge
    assert nudges("eng5@example.com") == 2

    clock.advance(timedelta(hours=24))
    await chat.tick()
    assert nudges("eng5@example.com") == 2  # the maximum is 2
    assert "Acknowledged 2 of 7" in await chat.say(COMMS.email, f"/crier status {ann}")


async def test_poll_reminds_non_voters_then_closes(chat, clock):
    poll = await chat.approved(
        '/poll to:Sales closes:in 2h anonymous "Team lunch?" "Pizza" "Sushi"')
    await chat.click("sales1@example.com", f"vote:{poll}:2")
    clock.advance(timedelta(hours=1))  # halfway: the one reminder
    await chat.tick()
    reminded = [e for e in ("sales1@example.com", "sales2@example.com")
                if any((m.title or "").startswith("Reminder") for m in chat.messages(e, poll))]
    assert reminded == ["sales2@example.com"]

    clock.advance(timedelta(hours=1))
    await chat.tick()
    out = await chat.click("sales2@example.com", f"vote:{poll}:1")
    assert "is closed" in out
    final = chat.messages("sales1@example.com", poll)[0]
    assert final.poll is not None and final.poll.closed
    assert [c.votes for c in final.poll.choices] == [0, 1]
    status = await chat.say(COMMS.email, f"/crier status {poll}")
    assert "Sushi: 1" in status and "sales1" not in status


@pytest.mark.parametrize("line, words", [
    ("/announce at:someday Hello", "cannot read `at:someday` as a time"),
    ("/announce at:25:00 Hello", "`25:00` is not a time of day"),
    ("/remind to:Sales every:fortnightly Hi", "cannot read `every:fortnightly` as a schedule"),
    ("/remind to:Sales every:0 9 31 2 * Hi", "never fires"),
    ("/announce at:2026-11-01 09:00 Hello", "is in the past"),
    ('/poll at:tomorrow 10:00 closes:tomorrow 09:00 "Q?" "A" "B"', "close before it opens"),
])
async def test_bad_times_say_what_works(chat, line, words):
    out = await chat.say(COMMS.email, line)
    assert words in out
    assert "✗" in out
    assert "submit:" not in out  # nothing was drafted


async def test_unknown_time_zone_in_directory_is_explained(chat, db):
    from sqlalchemy import update

    from storage.models import Person

    with db.session() as s:
        s.execute(update(Person).where(Person.email == COMMS.email)
                  .values(timezone="Mars/Olympus"))
    out = await chat.say(COMMS.email, "/announce at:tomorrow 9am Hello")
    assert "unknown time zone 'Mars/Olympus'" in out


async def test_cancel_rules(chat, clock):
    scheduled = await chat.approved("/announce to:Sales at:mon 09:00 Q4 kickoff")
    out = await chat.say(APPROVER.email, f"/crier cancel {scheduled}")
    assert "is not yours to cancel" in out
    out = await chat.say(COMMS.email, f"/crier cancel {scheduled}")
    assert "cancelled; nothing will be sent" in out
    clock.set(MONDAY_0900_UTC)
    await chat.tick()
    assert chat.messages("sales1@example.com", scheduled) == []

    sent = await chat.approved("/announce to:Sales Already out")
    out = await chat.say(COMMS.email, f"/crier cancel {sent}")
    assert "has already gone out" in out and f"/crier recall {sent}" in out


async def test_a_held_message_cannot_be_answered_before_it_arrives(chat, clock):
    clock.set(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))  # Saturday: held until Monday
    ann = await chat.approved("/announce to:Sales ack Read before Monday")
    out = await chat.click("sales1@example.com", f"ack:{ann}")
    assert f"#{ann} was not sent to you" in out


async def test_local_sends_at_the_same_wall_clock_time_in_every_office(chat, clock):
    # Casey (London) asks for Monday 09:00 in each recipient's own zone.
    ann = await chat.approved("/announce to:Engineering at:mon 09:00 local Stand-up moved")
    berlin = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    new_york = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # 09:00 in New York
    clock.set(berlin - timedelta(seconds=1))
    await chat.tick()
    assert chat.messages("eng1@example.com", ann) == []
    clock.set(berlin)
    await chat.tick()
    assert len(chat.messages("eng1@example.com", ann)) == 1  # Berlin
    assert chat.messages("eng2@example.com", ann) == []  # New York still asleep
    clock.set(new_york)
    await chat.tick()
    assert len(chat.messages("eng2@example.com", ann)) == 1


async def test_a_cancelled_poll_is_not_closed_later(chat, clock, db):
    poll = await chat.approved('/poll to:Sales at:mon 09:00 closes:mon 17:00 "Q?" "A" "B"')
    assert "cancelled" in await chat.say(COMMS.email, f"/crier cancel {poll}")
    clock.set(datetime(2026, 11, 30, 18, 0, tzinfo=UTC))
    await chat.tick()
    with db.session() as s:
        assert s.get(Announcement, poll).closed_at is None
    assert chat.messages("sales1@example.com", poll) == []
