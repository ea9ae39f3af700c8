"""An author's daily quota on audience size: set by an operator, shown in whoami,
enforced when drafting."""

from __future__ import annotations

from datetime import timedelta

from tests.factories import COMMS
from tests.harness import make_chat
from tests.test_cli import crier
from tests.test_commands import drafts


async def test_an_author_over_quota_is_refused_with_what_is_left(db, db_url, clock):
    chat = make_chat(db, clock)
    assert "Daily quota: none" in await chat.say(COMMS.email, "/crier whoami")
    result = crier(db_url, "quota", "set", COMMS.email, "6")
    assert result.exit_code == 0, result.output
    assert "Casey Morgan may reach 6 recipients a day." in result.output

    assert "submit:" in await chat.say(COMMS.email, "/announce to:Sales Q1 kickoff")  # 4
    assert "Daily quota: 6 recipients a day (4 used today)" in await chat.say(
        COMMS.email, "/crier whoami")
    out = await chat.say(COMMS.email, "/announce to:Sales Agenda attached")
    assert out.startswith("✗ this would reach 4 people, and your daily quota has 2 of 6 "
                          "recipients left today")
    assert "ask an admin to raise your quota (`crier quota set EMAIL N`)" in out
    assert drafts(db) == 1

    # A discarded draft gives its recipients back; the next day starts afresh.
    await chat.click(COMMS.email, "discard:1")
    assert "submit:" in await chat.say(COMMS.email, "/announce to:Sales Agenda attached")
    assert (await chat.say(COMMS.email, "/announce to:Sales More")).startswith("✗ this would")
    clock.advance(timedelta(days=1))
    assert "submit:" in await chat.say(COMMS.email, "/announce to:Sales More")

    result = crier(db_url, "quota", "set", COMMS.email, "off")
    assert "Casey Morgan has no daily quota." in result.output
    assert "submit:" in await chat.say(COMMS.email, "/announce to:all Everyone, hello")


def test_bad_quota_commands_are_one_clear_line(db, db_url, clock):
    make_chat(db, clock)
    for args, said in ((["ana@nowhere.example", "5"], '✗ there is no "ana@nowhere.example"'),
                       ([COMMS.email, "lots"], "✗ `lots` is not a quota"),
                       ([COMMS.email, "3.5"], "✗ `3.5` is not a quota"),
                       ([COMMS.email, "9" * 40], "is not a quota")):
        result = crier(db_url, "quota", "set", *args)
        assert result.exit_code == 2, result.output
        assert said in result.output.splitlines()[0]
        assert "Traceback" not in result.output
