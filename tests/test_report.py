"""The weekly report after a scripted week, and its automatic posting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from announcements import report_view
from bot.console.render import render
from bot.settings import Settings
from tests.factories import ADMIN, COMMS
from tests.harness import make_chat

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def week(db, clock):
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))  # Monday, working hours everywhere
    return make_chat(db, clock)


async def scripted_week(chat, clock):
    policy = await chat.approved("/announce to:Engineering ack urgent New on-call policy")
    for email in ("eng1@example.com", "eng2@example.com", "eng3@example.com"):
        await chat.click(email, f"ack:{policy}")
    clock.advance(timedelta(days=1))
    kickoff = await chat.approved("/announce to:Sales ack Q1 kickoff agenda")
    for i in range(1, 5):
        await chat.click(f"sales{i}@example.com", f"ack:{kickoff}")
    clock.advance(timedelta(days=1))
    poll = await chat.approved('/poll to:Engineering,Sales anonymous "Offsite?" "Lisbon" "Prague"')
    await chat.click("eng1@example.com", f"vote:{poll}:1")
    await chat.click("sales1@example.com", f"vote:{poll}:2")
    await chat.click("sales2@example.com", f"vote:{poll}:2")
    await chat.say("eng4@example.com", "/crier optout polls")
    clock.advance(timedelta(days=2))
    return policy, kickoff, poll


async def test_weekly_report_covers_the_week(week, clock):
    policy, kickoff, poll = await scripted_week(week, clock)
    report = week.runtime.scheduler.report()
    view = report_view.build(report)
    text = render(report_view.message(view))  # the console shows aligned text
    assert "Sent          3 announcements and polls" in text
    # Engineering 3/7 acknowledged sits above Sales 4/4: lowest first.
    assert text.index("Engineering  3 of 7 acknowledged · 43%") < text.index(
        "Sales        4 of 4 acknowledged · 100%")
    assert "Urgent items still unacknowledged" in text
    assert f"#{policy} New on-call policy  4 of 7 have not acknowledged" in text
    assert f"Poll #{poll}: Offsite? (anonymous)\n  3 of 11 answered" in text
    assert "Prague  2 votes · 67%" in text  # 2 of 3 rounds half up, as everywhere
    assert "##" not in text and "|" not in text
    assert "sales1" not in text and "eng1@" not in text  # no voter identities
    assert "Opted out     survey: 1 (new: 1)" in text
    assert report.chart_png.startswith(PNG) and len(report.chart_png) > 5_000

    md = report_view.markdown(view, "weekly.png")  # files get Markdown, with the chart linked
    assert "![Acknowledgement and poll chart](weekly.png)" in md
    assert md.index("| Engineering | 3 | 7 | 43% |") < md.index("| Sales | 4 | 4 | 100% |")
    assert "- **Prague**: 2 votes · 67%" in md


async def test_report_is_posted_to_subscribed_channels_and_says_when_late(db, clock):
    clock.set(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    chat = make_chat(db, clock, Settings(database_url=str(db.url), report_schedule="mon 09:00"))
    out = await chat.say(COMMS.email, "/crier report subscribe")
    assert "only admins" in out
    out = await chat.say(ADMIN.email, "/crier report subscribe")
    assert "will get the weekly report" in out
    await scripted_week(chat, clock)

    # Crier was down over Monday 09:00 and starts at 12:30: one report, marked late.
    clock.set(datetime(2026, 11, 30, 12, 30, tzinfo=UTC))
    await chat.tick()
    await chat.tick()
    posts = chat.platform.channels["console"]
    assert len(posts) == 1
    message, attachment = posts[0]
    shown = render(message)
    assert "This report is 3.5 hours late" in shown
    assert "Sales  4 of 4 acknowledged · 100%" in shown and "Prague  2 votes · 67%" in shown
    assert attachment is not None and attachment.content.startswith(PNG)

    clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))  # on time next week
    await chat.tick()
    assert len(posts) == 2 and "late" not in render(posts[1][0])


async def test_report_from_chat_needs_a_role(week):
    out = await week.say("eng1@example.com", "/crier report")
    assert "reports are for authors, approvers and admins" in out
    out = await week.say(COMMS.email, "/crier report weekly")
    assert "Crier weekly report" in out and "Nothing was sent in this period" in out
