"""What people type, and what they are told when it is wrong. A refused
command leaves nothing behind."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from announcements.limits import MAX_TEXT_CHARS
from storage.models import Announcement, Vote
from tests.factories import ADMIN, APPROVER, COMMS, ENG_LEAD
from tests.harness import make_chat


@pytest.fixture
def chat(db, clock):
    return make_chat(db, clock)


def drafts(db) -> int:
    with db.session() as s:
        return s.execute(select(func.count()).select_from(Announcement)).scalar_one()


@pytest.mark.parametrize("line, expected", [
    ("/anounce hello", "unknown command `/anounce`\nDid you mean /announce?"),
    ("/announce too:Engineering hi", "unknown option `too:`"),
    ("/announce to:Engineering", "the announcement has no text"),
    ("/crier frobnicate", "unknown subcommand `frobnicate`"),
    ("/crier cancel twelve", "`twelve` is not an announcement number"),
    ('/poll "Lunch?', "a quote in the poll is not closed"),
    ("/crier remind every:mon 09:00 Timesheets",
     "a reminder needs `to:AUDIENCE`\nUsage: /crier remind"),
    ("/announce remind:24h Please read", "`remind:` nudges people who have not acknowledged"),
    ("/announce to:Enginering hi", "unknown department `Enginering`\nDid you mean `Engineering`?"),
    ("/announce to:Berlin hi", "`Berlin` is a location, not a department\nWrite `loc:Berlin`"),
    ("/announce to:loc:Berln hi", "unknown location `Berln`\nDid you mean `loc:Berlin`?"),
    ("/announce to:@nobody@example.com hi", "nobody in the directory has the email"),
    ("/announce to:Sales,-Sales hi", "reaches nobody"),
    ("/poll \"Only one?\" \"Yes\"", "a poll needs at least 2 options"),
    ("/poll \"Q?\" " + " ".join(f'"o{i}"' for i in range(11)), "at most 10 options (Telegram"),
    ('/poll "Q?" "Same" "same"', "the option `same` is given twice"),
    ('/poll "Q?" "A" "' + "x" * 80 + '"', "options allow 75 (Slack's limit for button labels)"),
])
async def test_bad_commands_are_explained_and_leave_nothing(chat, db, line, expected):
    out = await chat.say(COMMS.email, line)
    assert out.startswith("✗ ")
    assert expected in out
    assert "Usage:" in out or "Did you mean" in out or "\n" in out  # always says what to do
    assert drafts(db) == 0


async def test_over_long_text_says_where_the_limit_comes_from(chat, db):
    out = await chat.say(COMMS.email, "/announce " + "a" * (MAX_TEXT_CHARS + 1))
    assert f"the limit is {MAX_TEXT_CHARS:,}" in out and "Microsoft Teams" in out
    assert drafts(db) == 0


async def test_only_authors_draft_and_only_within_their_scope(chat, db):
    out = await chat.say("eng1@example.com", "/announce to:Engineering Pizza on Friday")
    assert "you are not an author" in out and "crier roles grant" in out
    out = await chat.say(ENG_LEAD.email, "/announce to:Engineering,Sales Deploy freeze")
    assert "your author role covers engineering, but this audience also reaches Sales (4)" in out
    assert drafts(db) == 0
    out = await chat.say(ENG_LEAD.email, "/announce to:Engineering Deploy freeze")
    assert "will reach 7 people" in out


async def test_unknown_people_are_told_politely(chat):
    out = await chat.say("stranger@example.com", "/announce hi")
    assert "not in Crier's directory" in out


async def test_approval_needs_scope_and_a_second_person(chat, clock):
    out = await chat.say(COMMS.email, "/announce to:Engineering,Sales Company update")
    ann = int(out.split("submit:")[1].split("]")[0])
    await chat.click(COMMS.email, f"submit:{ann}")
    await chat.tick()
    # Erin approves for Engineering only: this audience includes Sales.
    out = await chat.click(ENG_LEAD.email, f"approve:{ann}")
    assert "your approver role covers engineering" in out
    out = await chat.click(APPROVER.email, f"approve:{ann}")
    assert f"Approved #{ann}" in out
    out = await chat.click(ADMIN.email, f"approve:{ann}")
    assert f"#{ann} is already approved by Avery Chen" in out


async def test_rejection_reason_reaches_the_author(chat):
    out = await chat.say(COMMS.email, "/announce to:Sales Prices go up")
    ann = int(out.split("submit:")[1].split("]")[0])
    await chat.click(COMMS.email, f"submit:{ann}")
    await chat.tick()
    out = await chat.click(APPROVER.email, f"reject:{ann}", "Wait for the board decision")
    assert "Rejected" in out
    await chat.tick()
    outcome = [m for m in chat.messages(COMMS.email, ann) if m.purpose == "outcome"]
    assert outcome and "rejected by Avery Chen" in outcome[0].title
    assert "Reason: Wait for the board decision" in outcome[0].text
    assert chat.messages("sales1@example.com", ann) == []
    assert "— rejected" in await chat.say(COMMS.email, f"/crier status {ann}")


async def test_poll_answers_single_multi_and_anonymous(chat, db):
    single = await chat.approved('/poll to:Sales "Lunch?" "Pizza" "Sushi"')
    await chat.click("sales1@example.com", f"vote:{single}:1")
    out = await chat.click("sales1@example.com", f"vote:{single}:2")
    assert "Your answer to" in out and "Sushi" in out
    multi = await chat.approved('/poll to:Sales multi "Which days?" "Mon" "Tue" "Wed"')
    await chat.click("sales2@example.com", f"vote:{multi}:1")
    await chat.click("sales2@example.com", f"vote:{multi}:3")
    out = await chat.click("sales2@example.com", f"vote:{multi}:1")  # toggles Mon off
    assert out.splitlines()[0] == f"Your answer to #{multi}: Wed."
    with db.session() as s:
        votes = s.execute(select(func.count()).select_from(Vote)).scalar_one()
    assert votes == 2  # Sushi (single, replaced Pizza) and Wed (multi)
    status = await chat.say(COMMS.email, f"/crier status {single}")
    assert "Pizza: 0" in status and "Sushi: 1" in status and "Answers: 1 of 4" in status


async def test_whoami_help_and_optout(chat):
    out = await chat.say(ENG_LEAD.email, "/crier whoami")
    assert "Erin Park <erin.eng@example.com>" in out
    assert "author:Engineering" in out and "approver:Engineering" in out
    assert "/announce" in await chat.say(COMMS.email, "/crier help")
    assert "/announce" not in await chat.say("eng1@example.com", "/crier help")
    out = await chat.say("eng1@example.com", "/crier optout announcements")
    assert "there is no category `announcements`" in out and "survey" in out
    # `polls`, the opt-out of before categories, is the survey category (polls' default).
    out = await chat.say("eng1@example.com", "/crier optout polls")
    assert "no longer receive survey messages" in out
    poll = await chat.approved('/poll to:Engineering "Standup time?" "9:00" "9:30"')
    assert chat.messages("eng1@example.com", poll) == []
    assert len(chat.messages("eng3@example.com", poll)) == 1
