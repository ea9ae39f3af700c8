"""The chat command grammar, shared by every platform.

    /announce [to:AUDIENCE] [at:WHEN] [category:NAME] [ack] [urgent] [local] [remind:EVERY]
              [escalate:DURATION] TEXT
    /poll [to:AUDIENCE] [at:WHEN] [closes:WHEN] [category:NAME] [multi] [anonymous] "Question?" …
    /crier remind to:AUDIENCE every:SCHEDULE [category:NAME] TEXT
    /crier help | status [ID] | list | cancel ID | recall ID | edit ID TEXT
           | report [weekly] | report subscribe | optout CATEGORY | optin CATEGORY
           | preferences | whoami
           | audit ID | roles | grant EMAIL ROLE [SCOPE] | revoke EMAIL ROLE [SCOPE]  (admins)

Every command is reachable under ``/crier`` (``/crier announce …``, ``/crier poll …``,
``/crier remind …``); ``/announce``, ``/poll`` and ``/remind`` are shortcuts, and a
platform registers only the shortcuts that are not its own built-in commands
(``bot.slack.commands.SLACK_SHORTCUTS``: Slack keeps ``/remind`` for itself).

Numbers are read here, once: an announcement id is ASCII digits from 1 to
``MAX_ID``; durations, intervals and dates are bounded by ``announcements.timespec``.

Options come first; the first word that is not an option starts the text, which
is kept exactly as typed. Option values with spaces may be quoted
(``to:"Customer Success"``); time values may also run over several words
(``at:tomorrow 9am``, ``every:0 9 * * 1``): the longest run that reads as a time
is taken.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import shlex
from dataclasses import dataclass, field
from typing import TypedDict

from announcements.errors import CrierError
from announcements.limits import MAX_ID
from announcements.timespec import (
    EVERY_FORMS,
    WHEN_FORMS,
    Every,
    When,
    parse_duration,
    parse_every,
    parse_when,
    shorten,
)
from announcements.types import DraftRequest, Kind

USAGE = {
    "announce": "/announce [to:AUDIENCE] [at:WHEN] [category:NAME] [ack] [urgent] [local] "
    "[remind:EVERY] [escalate:DURATION] TEXT",
    "poll": '/poll [to:AUDIENCE] [at:WHEN] [closes:WHEN] [category:NAME] [multi] [anonymous] '
    '"Question?" "Option" "Option" ...',
    "remind": "/crier remind to:AUDIENCE every:SCHEDULE [category:NAME] TEXT",
    "crier": "/crier help | status [ID] | list | cancel ID | recall ID | edit ID TEXT | "
    "report [weekly] | report subscribe | optout CATEGORY | optin CATEGORY | preferences | "
    "whoami | announce … | poll … | remind …",
}
ADMIN_USAGE = "/crier audit ID | roles | grant EMAIL ROLE [SCOPE] | revoke EMAIL ROLE [SCOPE]"


#: Which ``key:`` options and bare flags each command takes.
OPTIONS = {
    "announce": ({"to", "at", "remind", "category", "escalate"}, {"ack", "urgent", "local"}),
    "poll": ({"to", "at", "closes", "category"}, {"multi", "anonymous", "urgent", "local"}),
    "remind": ({"to", "every", "category"}, {"urgent"}),
}
_TIME_KEYS = {"at": 3, "closes": 3, "remind": 5, "every": 5}  # most words a value may span
_OPTION_LIKE = re.compile(r"^([a-z]{1,12}):(\S.*)?$")

CRIER_SUBCOMMANDS = (
    "help", "status", "list", "cancel", "recall", "edit", "report", "optout", "optin",
    "preferences", "whoami",
    "audit", "roles", "grant", "revoke",  # admins
    *OPTIONS,  # /crier announce|poll|remind: read as the drafting commands
)
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'",
                               "\u2019": "'"})


class GrammarError(CrierError):
    """A command that cannot be read; names the bad token and shows the usage line."""


@dataclass(frozen=True)
class OpenForm:
    """``/announce`` with nothing after it: open the drafting form where there is one."""

    kind: Kind


@dataclass(frozen=True)
class CrierCommand:
    sub: str
    args: tuple[str, ...] = ()
    text: str = ""  # the raw remainder, for `edit ID TEXT`

    def id_arg(self) -> int | None:
        return parse_id(self.args[0], self.sub) if self.args else None


Command = DraftRequest | CrierCommand | OpenForm


def parse_id(token: str, sub: str = "status", usage: str | None = None) -> int:
    """An announcement number: ASCII digits (``#`` in front allowed), 1 to ``MAX_ID``."""
    raw = token.removeprefix("#")
    usage = usage or (
        f"Usage: /crier {sub} ID, e.g. /crier {sub} 12 (the #number in `/crier list`)")
    if not (raw.isascii() and raw.isdigit()):
        raise GrammarError(f"`{shorten(token)}` is not an announcement number", usage)
    digits = raw.lstrip("0")
    # Compare lengths first: a thousand-digit token never reaches int().
    if not digits or len(digits) > len(str(MAX_ID)) or int(digits) > MAX_ID:
        raise GrammarError(
            f"`{shorten(token)}` is not an announcement number: they run from 1 to {MAX_ID}",
            usage,
        )
    return int(digits)


def parse(line: str) -> Command:
    """Read one command line (with or without the leading slash)."""
    line = line.strip().translate(_SMART_QUOTES)
    if line.startswith("/"):
        line = line[1:]
    name, rest = _split_word(line)
    name = name.lower()
    if name not in USAGE:
        close = difflib.get_close_matches(name, list(USAGE), n=1)
        hint = f"Did you mean /{close[0]}? " if close else ""
        raise GrammarError(
            f"unknown command `/{shorten(name)}`",
            hint + "Commands: /announce, /poll, /crier remind, /crier help.",
        )
    if name == "crier":
        sub, after = _split_word(rest.strip())
        if sub.lower() not in OPTIONS:
            return _parse_crier(rest)
        name, rest = sub.lower(), after
    if not rest.strip() and name == "announce":
        return OpenForm(Kind.MESSAGE)
    return _parse_draft(name, rest)


def _split_word(text: str) -> tuple[str, str]:
    """The first word and the rest after one whitespace character."""
    for i, c in enumerate(text):
        if c.isspace():
            return text[:i], text[i + 1:]
    return text, ""


def _parse_crier(rest: str) -> CrierCommand:
    words = rest.split()
    if not words:
        return CrierCommand("help")
    sub = words[0].lower()
    if sub not in CRIER_SUBCOMMANDS:
        close = difflib.get_close_matches(sub, CRIER_SUBCOMMANDS, n=1)
        hint = f"Did you mean `/crier {close[0]}`? " if close else ""
        raise GrammarError(f"unknown subcommand `{shorten(words[0])}`",
                           hint + "Usage: " + USAGE["crier"])
    args = tuple(words[1:])
    needs_id = {"cancel", "recall", "edit", "audit"}
    if sub in needs_id and not args:
        raise GrammarError(f"`/crier {sub}` needs an announcement number",
                           f"Usage: /crier {sub} ID")
    if sub in needs_id or (sub == "status" and args):
        parse_id(args[0], sub)
    text = ""
    if sub == "edit":
        text = rest.split(None, 2)[2] if len(rest.split(None, 2)) == 3 else ""
        if not text.strip():
            raise GrammarError("`/crier edit` needs the new text", "Usage: /crier edit ID NEW TEXT")
    if sub in ("optout", "optin") and len(args) != 1:
        raise GrammarError(
            f"`/crier {sub}` takes one category",
            f"Usage: /crier {sub} CATEGORY, e.g. social (`/crier preferences` lists them)"
        )
    if sub == "report" and args and args[0].lower() not in ("weekly", "subscribe", "unsubscribe"):
        raise GrammarError(
            f"unknown report `{shorten(args[0])}`",
            "Usage: /crier report [weekly] | report subscribe"
        )
    return CrierCommand(sub, args, text)


@dataclass
class _Draft:
    values: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)


def _parse_draft(name: str, rest: str) -> DraftRequest:
    keys, flags = OPTIONS[name]
    usage = "Usage: " + USAGE[name]
    draft = _Draft()
    pos = 0
    n = len(rest)
    while True:
        while pos < n and rest[pos].isspace():
            pos += 1
        if pos >= n:
            break
        end = _token_end(rest, pos)
        token = rest[pos:end]
        if token in flags:
            draft.flags.add(token)
            pos = end
            continue
        m = _OPTION_LIKE.match(token)
        key = m.group(1) if m else None
        if m is None or key not in keys:
            if m is not None and _looks_like_option(token, keys | flags):
                close = difflib.get_close_matches(key or "", sorted(keys), n=1)
                hint = f"Did you mean `{close[0]}:`? " if close else ""
                raise GrammarError(f"unknown option `{key}:` in `{token}`", hint + usage)
            break  # the text starts here
        if key in draft.values:
            raise GrammarError(f"`{key}:` is given twice", usage)
        value, pos = _read_value(rest, pos + len(key) + 1, key)
        if not value:
            raise GrammarError(f"`{key}:` needs a value", usage)
        draft.values[key] = value
    text = rest[pos:].strip()
    return _build(name, draft, text, usage)


def _looks_like_option(token: str, known: set[str]) -> bool:
    key, _, value = token.partition(":")
    if value.startswith("/"):
        return False  # a URL such as https://…
    return bool(difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.5)) or key in (
        "audience", "when", "schedule", "close", "closing", "categories", "cat",
    )


def _token_end(s: str, pos: int) -> int:
    """End of the whitespace-delimited token at ``pos``, skipping over quoted parts."""
    quote = None
    i = pos
    while i < len(s):
        c = s[i]
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'" and (i == pos or s[i - 1] in ":,-"):
            quote = c
        elif c.isspace():
            break
        i += 1
    return i


def _read_value(s: str, pos: int, key: str) -> tuple[str, int]:
    """The value of ``key:`` starting at ``pos``; returns (value, position after it)."""
    end = _token_end(s, pos)
    value = s[pos:end]
    if value.count('"') % 2 or (value.count("'") % 2 and value[:1] == "'"):
        raise GrammarError(
            f"a quote after `{key}:` is not closed", 'Close it, e.g. to:"Customer Success"'
        )
    if '"' in value or value[:1] == "'":
        return value.replace('"', "").strip("'").strip(), end
    if key not in _TIME_KEYS:
        return value, end
    # Time values may span words: take the longest run that parses. A run that
    # reads as an impossible time (`tomorrow 25:00`, `in 9999d`) is remembered, and
    # is the error when the first word is no time on its own.
    check = parse_when if key in ("at", "closes") else parse_every
    best_value, best_end = value, end
    cursor, words = end, value
    problem: CrierError | None = None
    for _ in range(_TIME_KEYS[key] - 1):
        while cursor < len(s) and s[cursor].isspace():
            cursor += 1
        if cursor >= len(s):
            break
        nxt = _token_end(s, cursor)
        words = words + " " + s[cursor:nxt]
        cursor = nxt
        try:
            if check(words) is not None:
                best_value, best_end = words, cursor
        except CrierError as exc:
            problem = problem or exc
    if problem is not None and best_value == value:
        with contextlib.suppress(CrierError):  # the first word alone is a time: text follows
            problem = None if check(value) is not None else problem
        if problem is not None:
            raise GrammarError(problem.message, problem.hint)
    if best_value.lower() == "in" and check is parse_when:
        _refuse_delay(s, end, key)
    return best_value, best_end


def _refuse_delay(s: str, pos: int, key: str) -> None:
    """``at:in`` followed by a word that is no delay: name that word."""
    while pos < len(s) and s[pos].isspace():
        pos += 1
    delay = s[pos:_token_end(s, pos)]
    if delay:
        raise GrammarError(f"cannot read `{key}:in {shorten(delay)}` as a delay",
                           "Write a number and a unit, e.g. `in 10m`, `in 2h` or `in 3d`.")


class _Common(TypedDict):
    """The ``DraftRequest`` fields every drafting command sets."""

    audience: str
    at: When | None
    urgent: bool
    local_time: bool
    category: str | None


def _build(name: str, d: _Draft, text: str, usage: str) -> DraftRequest:
    at = _when(d.values.get("at"), "at")
    common = _Common(
        audience=d.values.get("to", "all"),
        at=at,
        urgent="urgent" in d.flags,
        local_time="local" in d.flags,
        category=d.values.get("category"),
    )
    if name == "announce":
        if not text:
            raise GrammarError("the announcement has no text", usage)
        nudge = _every(d.values.get("remind"), "remind")
        if nudge is not None and "ack" not in d.flags:
            raise GrammarError(
                "`remind:` nudges people who have not acknowledged, so it needs `ack`",
                "Add `ack`: /announce to:Sales ack remind:24h Please read …",
            )
        escalate = d.values.get("escalate")
        after = parse_duration(escalate) if escalate is not None else None
        if escalate is not None and after is None:
            raise GrammarError(f"cannot read `escalate:{shorten(escalate)}` as a duration",
                               "Write e.g. `escalate:30m`, `escalate:4h` or `escalate:2d`.")
        return DraftRequest(Kind.MESSAGE, text, ack="ack" in d.flags, nudge=nudge,
                            escalate=after, **common)
    if name == "remind":
        if "to" not in d.values:
            raise GrammarError("a reminder needs `to:AUDIENCE`", usage)
        every = _every(d.values.get("every"), "every")
        if every is None:
            raise GrammarError("a reminder needs `every:SCHEDULE`",
                               usage + f"\nSchedules: {EVERY_FORMS}.")
        if not text:
            raise GrammarError("the reminder has no text", usage)
        return DraftRequest(Kind.REMINDER, text, every=every, **common)
    # poll
    try:
        parts = shlex.split(text)
    except ValueError:
        raise GrammarError("a quote in the poll is not closed", usage) from None
    if not parts:
        raise GrammarError("the poll has no question", usage)
    if text[0] not in "\"'" and len(parts) > 1 and not parts[0].endswith("?"):
        raise GrammarError(
            "put the poll's question and each option in quotes",
            "Type e.g. " + _quoted_poll(name, text),
        )
    question, options = parts[0], tuple(o.strip() for o in parts[1:])
    return DraftRequest(
        Kind.POLL,
        question.strip(),
        closes=_when(d.values.get("closes"), "closes"),
        multi="multi" in d.flags,
        anonymous="anonymous" in d.flags,
        options=options,
        **common,
    )


def _quoted_poll(name: str, text: str) -> str:
    """The quoted form of an unquoted poll: the question runs to its first ``?``."""
    words = text.split()
    ends = [i for i, w in enumerate(words) if w.endswith("?")]
    cut = ends[0] + 1 if ends else 1
    question, options = " ".join(words[:cut]), words[cut:] or ["Option", "Option"]
    line = f'/{name} "{question}" ' + " ".join(f'"{o}"' for o in options)
    return shorten(line, 200)


def _when(value: str | None, key: str) -> When | None:
    if value is None:
        return None
    when = parse_when(value)
    if when is None:
        raise GrammarError(f"cannot read `{key}:{shorten(value)}` as a time",
                           f"Write one of {WHEN_FORMS}.")
    return when


def _every(value: str | None, key: str) -> Every | None:
    if value is None:
        return None
    every = parse_every(value)
    if every is None:
        raise GrammarError(f"cannot read `{key}:{shorten(value)}` as a schedule",
                           f"Write one of {EVERY_FORMS}.")
    return every
