"""Departments and locations: one spelling each, and typos caught before they split one.

There is no table of departments: a department (or location) exists while a
person is in it. That makes a typo in a file or a profile a new department
nobody notices, so a name that looks like a misspelling is refused until the
person says it is intended.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable, Mapping

from sqlmodel import Session, select

from storage.models import Person

#: Two names at least this similar (difflib's ratio, in lower case) look like one
#: misspelt: ``Engneering``/``Engineering`` 0.95, ``Berln``/``Berlin`` 0.91, while
#: ``Team A``/``Team C`` (0.83) and ``Sales``/``Sales Ops`` (0.71) are different.
TYPO_SIMILARITY = 0.85
#: How close a name must be to be offered as "did you mean" when one is unknown.
SUGGEST_SIMILARITY = 0.6


def spellings(names: Iterable[str | None]) -> dict[str, str]:
    """Lower case -> one spelling (the first in sorted order) of each name."""
    found: dict[str, str] = {}
    for name in sorted(n for n in names if n):
        found.setdefault(name.lower(), name)
    return found


def stored_places(session: Session) -> tuple[dict[str, str], dict[str, str]]:
    """Existing departments and locations, lower case -> stored spelling."""
    departments = spellings(session.exec(select(Person.department).distinct()).all())
    locations = spellings(session.exec(select(Person.location).distinct()).all())
    return departments, locations


def suggestions(name: str, known: Mapping[str, str], n: int = 3) -> list[str]:
    """The spellings in ``known`` (lower case -> spelling) closest to ``name``, without repeats."""
    close = difflib.get_close_matches(name.lower(), list(known), n=n, cutoff=SUGGEST_SIMILARITY)
    return list(dict.fromkeys(known[c] for c in close))


def did_you_mean(name: str, known: Mapping[str, str]) -> str:
    """`` (did you mean Engineering?)``, or an empty string when nothing is close."""
    close = suggestions(name, known)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def likely_typos(used: Iterable[str], stored: Mapping[str, str]) -> dict[str, str]:
    """Names in ``used`` (one entry per record) that look like a misspelling.

    A name not yet in the directory is taken for a typo of an existing name, or
    of a name more records use, when the two are at least ``TYPO_SIMILARITY``
    alike. Returns lower case name -> the spelling it probably means.
    """
    names = list(used)
    counts = Counter(name.lower() for name in names)
    first = spellings(names)
    typos: dict[str, str] = {}
    for name, count in counts.items():
        if name in stored:
            continue
        others = dict(stored)
        others.update({other: first[other] for other, n in counts.items()
                       if n > count and other not in stored})
        others.pop(name, None)
        close = difflib.get_close_matches(name, list(others), n=1, cutoff=TYPO_SIMILARITY)
        if close:
            typos[name] = others[close[0]]
    return typos
