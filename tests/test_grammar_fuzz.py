"""Property-based fuzzing of the command grammar (hypothesis).

1. Any text at all, fed to the grammar, is either a command or a ``CrierError``
   with a message and a hint; the times it reads resolve to an instant or to a
   ``CrierError``, never to an ``OverflowError`` or ``ValueError``.
2. Any generated command line typed into the console harness, NUL bytes and lone
   surrogates included, gets a reply the person sees, and never raises (the
   pipeline refuses what a database cannot store, in words).

Examples are bounded and derandomized so the run is quick and the same on a
2-core CI machine as on a laptop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from announcements.errors import CrierError
from announcements.limits import MAX_ID
from announcements.types import DraftRequest
from bot import grammar
from tests import test_commands
from tests.factories import COMMS

chat = test_commands.chat  # a chat on the seeded company

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ZONES = ("UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago")

#: Words the grammar knows, and the awkward things people (and attackers) type.
WORDS = (
    "/announce", "/poll", "/remind", "/crier", "announce", "poll", "remind", "help", "status",
    "list", "cancel", "recall", "edit", "report", "weekly", "subscribe", "optout", "optin",
    "whoami", "to:", "at:", "closes:", "every:", "remind:", "too:", "ack", "urgent", "local",
    "multi", "anonymous", "in", "tomorrow", "today", "mon", "weekday", "daily", "9am", "13pm",
    "09:00", "25:00", "24:60", "0am", "2026-12-01", "9999-12-31", "0001-01-01", "2026-02-30",
    "10m", "30s", "24h", "366d", "367d", "0 9 * * 1", "*/0", "all", "Sales", "-Sales",
    "loc:Berlin", "@casey.comms@example.com", "Customer Success", "#", "#12", "-1", "0",
    "²", "٣", "１２", "⁹", '"', "'", "“", "”", "?", "Lunch?", "\x00", "\x1b[31m", "\u202e",
    "\ud800", "\t", "\n", "\r\n", "🎉", str(MAX_ID), str(MAX_ID + 1), "9" * 30, "9" * 5000,
)
NUMBERS = st.one_of(st.integers(min_value=-99, max_value=99).map(str),
                    st.integers(min_value=MAX_ID - 2, max_value=10**40).map(str),
                    st.integers(min_value=-(10**30), max_value=10**30).map(str),
                    st.sampled_from(("1e9", "0x10", "1_000", "٣٣", "¹²", "99999999999999999999m",
                                     "in 99999999999999999999999m")))
TOKENS = st.one_of(st.sampled_from(WORDS), NUMBERS,
                   st.text(st.characters(codec=None), max_size=8),
                   st.tuples(st.sampled_from(("at:", "closes:", "every:", "remind:", "to:")),
                             NUMBERS, st.sampled_from(("", "s", "m", "h", "d", "w", "weeks")))
                   .map("".join))
#: Commands shaped the way the grammar reads them, with numbers of any size inside.
UNITS = st.sampled_from(("", "s", "m", "h", "d", "w", " minutes", "weeks"))
CLOCK = st.one_of(
    st.tuples(NUMBERS, NUMBERS).map(":".join),
    st.tuples(NUMBERS, st.sampled_from(("am", "pm"))).map("".join),
    st.sampled_from(("9am", "09:00", "25:00", "12:60", "0pm")),
)
DATE = st.tuples(NUMBERS, NUMBERS, NUMBERS).map("-".join) | st.dates().map(str)
TIME = st.one_of(
    st.tuples(st.just("in "), NUMBERS, UNITS).map("".join),
    st.tuples(NUMBERS, UNITS).map("".join),
    CLOCK,
    st.tuples(st.sampled_from(("tomorrow", "today", "mon", "weekday", "daily")), CLOCK)
    .map(" ".join),
    st.tuples(DATE, CLOCK).map(" ".join),
    st.lists(st.sampled_from(("0", "9", "*", "*/5", "1-5", "mon", "99999999999")), min_size=5,
             max_size=5).map(" ".join),
)
OPTION = st.one_of(
    st.tuples(st.sampled_from(("at:", "closes:", "every:", "remind:")), TIME).map("".join),
    st.sampled_from(("to:Sales", 'to:"Customer Success"', "to:loc:Berlin", "to:all,-Sales",
                     "ack", "urgent", "local", "multi", "anonymous")),
)
HEADS = ("/announce", "/poll", "/remind", "/crier announce", "/crier poll", "/crier remind")
COMMANDS = st.one_of(
    st.tuples(st.sampled_from(HEADS), st.lists(OPTION, max_size=4).map(" ".join),
              st.sampled_from(("Hello", '"Lunch?" "Pizza" "Sushi"', "Where to? A B", ""))
              ).map(" ".join),
    st.tuples(st.sampled_from(("/crier status", "/crier cancel", "/crier recall", "/crier edit")),
              NUMBERS | st.sampled_from(WORDS), st.sampled_from(("", "New text"))).map(" ".join),
)
LINES = st.one_of(
    COMMANDS,
    st.text(max_size=60),  # anything at all, unicode and control characters included
    st.lists(TOKENS, min_size=1, max_size=8).flatmap(
        lambda parts: st.lists(st.sampled_from((" ", "  ", "\t", "")), min_size=len(parts),
                               max_size=len(parts)).map(
            lambda gaps: "".join(g + p for g, p in zip(gaps, parts, strict=True)))),
)


def _read(line: str) -> str:
    """What the grammar makes of ``line``; raises only ``CrierError`` (the property)."""
    try:
        command = grammar.parse(line)
    except CrierError as exc:
        assert exc.message.strip() and exc.hint and exc.hint.strip(), (line, exc)
        return "refused"
    if isinstance(command, grammar.CrierCommand):
        try:
            command.id_arg()
        except CrierError as exc:  # only for subcommands whose argument is not an id
            assert command.sub not in ("cancel", "recall", "edit"), (line, exc)
    if isinstance(command, DraftRequest):
        for when in (command.at, command.closes):
            for tz in ZONES if when is not None else ():
                with contextlib.suppress(CrierError):
                    when.resolve(NOW, tz)
    return type(command).__name__



@settings(max_examples=1500, deadline=None, derandomize=True, database=None)
@given(LINES)
def test_the_grammar_refuses_only_with_a_message_and_a_hint(line):
    _read(line)


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(st.text(st.characters(codec=None), max_size=40))
def test_any_crier_argument_is_read_or_refused(rest):
    for sub in ("status", "cancel", "recall", "edit", "report", "optout", "remind", "poll"):
        _read(f"/crier {sub} {rest}")




@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


# The chat fixture is made once for all examples (hence the suppressed health check):
# state piles up from one line to the next, as it would in a real conversation.
@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(line=LINES, author=st.booleans())
def test_every_typed_line_gets_a_reply(chat, loop, caplog, line, author):
    who = COMMS.email if author else "sales1@example.com"
    out = loop.run_until_complete(chat.say(who, line))
    assert out.strip(), line
    # Not a crash answered with "try again": nothing was logged as an error.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], line
