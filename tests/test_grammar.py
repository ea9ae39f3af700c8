"""Numbers, names and phrasing the grammar must refuse with a clear line, typed
through the console harness (so on PostgreSQL too, with CRIER_TEST_POSTGRES_URL):
what was wrong, what to type instead, and nothing left behind."""

from __future__ import annotations

import pytest

from announcements.limits import MAX_DURATION_DAYS, MAX_ID
from tests import test_commands
from tests.factories import COMMS, Staff, company
from tests.harness import make_chat

chat = test_commands.chat  # the same fixture: a chat on the seeded company
drafts = test_commands.drafts
HUGE = "99999999999999999999999"


@pytest.mark.parametrize("line, wrong, hint", [
    (f"/crier cancel {HUGE}", f"`{HUGE}` is not an announcement number: they run from 1 to "
                              f"{MAX_ID}", "Usage: /crier cancel ID, e.g. /crier cancel 12"),
    (f"/crier status {HUGE}", "is not an announcement number", "/crier status 12"),
    (f"/crier recall {HUGE}", "is not an announcement number", "/crier recall 12"),
    (f"/crier edit {HUGE} New text", "is not an announcement number", "/crier edit 12"),
    (f"/crier status {MAX_ID + 1}", "they run from 1 to", "/crier status 12"),
    ("/crier cancel 0", "`0` is not an announcement number", "/crier cancel 12"),
    ("/crier recall ²", "`²` is not an announcement number", "/crier recall 12"),
    ("/crier status ٣", "`٣` is not an announcement number", "/crier status 12"),
    ("/crier cancel " + "9" * 5000, "`99999", "/crier cancel 12"),
    (f"/announce at:in {HUGE}m Hello", f"`{HUGE}m` is longer than {MAX_DURATION_DAYS} days",
     "Use at most a year"),
    (f"/announce at:in {MAX_DURATION_DAYS + 1}d Hello", "is longer than", "e.g. `30d`"),
    (f'/poll closes:in {HUGE}h "Lunch?" "Pizza" "Sushi"', "is longer than", "e.g. `30d`"),
    (f"/crier remind to:Sales every:{HUGE}h Timesheets", "is longer than", "e.g. `30d`"),
    (f"/announce ack remind:{HUGE}h Please read", "is longer than", "e.g. `30d`"),
    ("/announce at:in ²m Hello", "cannot read `at:in ²m` as a delay", "e.g. `in 10m`"),
    ("/poll closes:in soon \"Q?\" \"A\" \"B\"", "cannot read `closes:in soon` as a delay",
     "e.g. `in 10m`"),
    ("/announce at:tomorrow 25:00 Hello", "`25:00` is not a time of day",
     "Write hours 0-23 and minutes 00-59"),
    ("/poll closes:fri 13pm \"Lunch?\" \"Pizza\" \"Sushi\"", "`13pm` is not a time of day",
     "e.g. `09:00`"),
    ("/crier remind to:Sales every:mon 24:30 Timesheets", "`24:30` is not a time of day",
     "e.g. `09:00`"),
    ("/announce at:9999-12-31 23:59 Hello", "`9999-12-31` is outside the years 2000-2100",
     "Pick a date"),
    ("/announce at:2026-02-30 09:00 Hello", "`2026-02-30` is not a date", "YYYY-MM-DD"),
    ("/poll Where should we go? Lisbon Prague", "put the poll's question and each option in "
     "quotes", 'Type e.g. /poll "Where should we go?" "Lisbon" "Prague"'),
    ("/crier poll Pizza Sushi Tacos", "put the poll's question and each option in quotes",
     '/poll "Pizza" "Sushi" "Tacos"'),
])
async def test_what_the_code_cannot_hold_is_refused_by_the_grammar(chat, db, line, wrong, hint):
    out = await chat.say(COMMS.email, line)
    assert out.startswith("✗ "), out
    first, _, rest = out.partition("\n")
    assert wrong in first, out
    assert hint in rest, out
    assert len(first) < 200  # a huge token is shortened, not echoed in full
    assert drafts(db) == 0


@pytest.mark.parametrize("sub", ["status", "cancel", "recall", "edit"])
async def test_the_largest_id_reaches_the_database_and_is_simply_not_found(chat, sub):
    line = f"/crier {sub} {MAX_ID}" + (" New text" if sub == "edit" else "")
    out = await chat.say(COMMS.email, line)
    assert out == f"✗ there is no announcement #{MAX_ID}\nSee `/crier list`."


async def test_every_command_is_reachable_under_crier(chat, db):
    out = await chat.say(COMMS.email, "/crier remind to:Sales every:mon 09:00 Timesheets")
    assert "submit:" in out and "Timesheets" in out, out
    out = await chat.say(COMMS.email, '/crier poll to:Sales "Lunch?" "Pizza" "Sushi"')
    assert "submit:" in out and "Lunch?" in out and "Sushi" in out, out
    ann = await chat.approved("/crier announce to:Sales ack Read me")
    assert chat.texts("sales1@example.com")[-1].startswith("Read me")
    assert f"#{ann}" in await chat.say(COMMS.email, f"/crier status {ann}")
    assert drafts(db) == 3
    # The shortcut still works where the platform lets Crier have it.
    assert "submit:" in await chat.say(COMMS.email, "/remind to:Sales every:24h Stand up")


async def test_help_names_the_commands_to_type(chat):
    out = await chat.say(COMMS.email, "/crier help")
    assert "/crier remind to:AUDIENCE every:SCHEDULE [category:NAME] TEXT" in out
    assert "\n  /remind" not in out  # Slack keeps /remind for itself
    assert "/announce [to:AUDIENCE]" in out and "announce … | poll … | remind …" in out


async def test_the_poll_question_may_stay_unquoted_when_it_is_one_word(chat):
    out = await chat.say(COMMS.email, "/poll to:Sales Lunch? Pizza Sushi")
    assert "submit:" in out and "Lunch?" in out, out


@pytest.fixture
def spaced(db, clock):
    people = company() + [
        Staff("cs1@example.com", "Cy Support", "Customer Success", "São Paulo",
              "America/Sao_Paulo"),
        Staff("cs2@example.com", "Di Support", "Customer Success", "São Paulo",
              "America/Sao_Paulo"),
    ]
    return make_chat(db, clock, people=people)


async def test_suggestions_are_unique_and_say_to_quote_names_with_spaces(spaced):
    out = await spaced.say(COMMS.email, "/announce to:Customer Success Welcome aboard")
    assert out.startswith("✗ unknown department `Customer`\n"), out
    assert out.count("`Customer Success`") == 1, out
    assert 'Put a name with spaces in quotes: to:"Customer Success".' in out
    out = await spaced.say(COMMS.email, "/announce to:loc:São Welcome aboard")
    assert out.count("`loc:São Paulo`") == 1 and 'to:"loc:São Paulo"' in out, out
    # ... and the quoted form the hint shows is accepted.
    out = await spaced.say(COMMS.email, '/announce to:"Customer Success" Welcome aboard')
    assert "submit:" in out and "2 people" in out, out
    out = await spaced.say(COMMS.email, '/announce to:"loc:São Paulo" Welcome aboard')
    assert "submit:" in out, out
