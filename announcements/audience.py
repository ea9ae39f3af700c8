"""Audiences: ``all``, departments, ``loc:City``, ``@person@example.com`` and
exclusions with a leading ``-``, comma-separated and case-insensitive.

Resolution is one SQL query over active people, so 100,000 people resolve in
a fraction of a second (see ``bench/bench_audience.py``).
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass
from typing import cast

from sqlalchemy import and_, false, func, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from announcements.errors import CrierError
from storage.models import Person as PersonRow

AUDIENCE_FORMS = "`all`, `Engineering,Sales`, `loc:Berlin`, `@ana@example.com`, `-Sales`"


@dataclass(frozen=True)
class Term:
    kind: str  # "all" | "dept" | "loc" | "person"
    value: str
    exclude: bool = False

    def __str__(self) -> str:
        prefix = "-" if self.exclude else ""
        if self.kind == "all":
            return prefix + "all"
        if self.kind == "loc":
            return f"{prefix}loc:{self.value}"
        if self.kind == "person":
            return f"{prefix}@{self.value}"
        return prefix + self.value


@dataclass(frozen=True)
class AudienceSpec:
    terms: tuple[Term, ...]

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)


@dataclass(frozen=True)
class Member:
    """A group of people who share a department and location, and how many they are.

    Role scopes are departments and locations, so these groups are all a policy
    check needs; a 100,000-person audience is a few dozen of them.
    """

    department: str
    location: str | None
    count: int = 1


@dataclass
class Resolved:
    spec: AudienceSpec
    members: list[Member]
    where: ColumnElement[bool]

    @property
    def size(self) -> int:
        return sum(m.count for m in self.members)

    def person_ids(self, session: Session) -> list[int]:
        """The recipients' ids, in id order (only fan-out needs them)."""
        query = select(col(PersonRow.id)).where(self.where).order_by(col(PersonRow.id))
        # A stored row's primary key is never NULL; the model types it ``int | None``.
        return cast(list[int], list(session.connection().execute(query).scalars()))

    def by_department(self) -> list[tuple[str, int]]:
        """Departments by head count, largest first."""
        counts: Counter[str] = Counter()
        for m in self.members:
            counts[m.department] += m.count
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def breakdown(self, limit: int = 6) -> str:
        parts = self.by_department()
        shown = ", ".join(f"{d} {n}" for d, n in parts[:limit])
        if len(parts) > limit:
            shown += f", {len(parts) - limit} more departments"
        return shown


def parse_audience(text: str) -> AudienceSpec:
    """Split an AUDIENCE into terms; names are checked against the directory later."""
    terms: list[Term] = []
    for raw in text.split(","):
        token = raw.strip()
        if not token:
            raise CrierError(
                f"the audience `{text}` has an empty part", f"Write e.g. {AUDIENCE_FORMS}."
            )
        exclude = token.startswith("-")
        token = token[1:].strip() if exclude else token
        low = token.lower()
        if low in ("all", "everyone", "*"):
            terms.append(Term("all", "all", exclude))
        elif low.startswith("loc:"):
            terms.append(Term("loc", token[4:].strip(), exclude))
        elif "@" in token:
            terms.append(Term("person", token.lstrip("@").lower(), exclude))
        else:
            terms.append(Term("dept", token, exclude))
    return AudienceSpec(tuple(terms))


def _suggest(name: str, known: list[str]) -> list[str]:
    """Up to three known names close to ``name`` or containing it, each once."""
    lowered = {k.lower(): k for k in known}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)
    hits += [low for low in lowered if name.lower() in low and low not in hits]
    return [lowered[h] for h in hits][:3]


def resolve(session: Session, text: str) -> Resolved:
    """Who an AUDIENCE reaches right now: active people only.

    Unknown names are errors that suggest the closest known ones; an audience
    that reaches nobody is an error too.
    """
    spec = parse_audience(text)
    active = col(PersonRow.active) == true()
    departments = session.execute(
        select(col(PersonRow.department)).where(active).distinct()
    ).scalars().all()
    locations = [
        loc
        for loc in session.execute(
            select(col(PersonRow.location)).where(active).distinct()
        ).scalars().all()
        if loc
    ]
    dept_by_lower = {str(d).lower(): str(d) for d in departments}
    loc_by_lower = {str(loc).lower(): str(loc) for loc in locations}

    include: list[ColumnElement[bool]] = []
    exclude: list[ColumnElement[bool]] = []
    for term in spec.terms:
        if term.kind == "all":
            cond: ColumnElement[bool] = true()
        elif term.kind == "dept":
            canonical = dept_by_lower.get(term.value.lower())
            if canonical is None:
                raise _unknown("department", term.value, list(dept_by_lower.values()), locations)
            cond = col(PersonRow.department) == canonical
        elif term.kind == "loc":
            canonical = loc_by_lower.get(term.value.lower())
            if canonical is None:
                raise _unknown("location", term.value, locations, [])
            cond = col(PersonRow.location) == canonical
        else:
            found = session.execute(
                select(col(PersonRow.id)).where(func.lower(col(PersonRow.email)) == term.value)
            ).first()
            if found is None:
                emails = session.execute(select(col(PersonRow.email)).where(active)).scalars().all()
                close = difflib.get_close_matches(term.value, list(emails), n=3)
                hint = f"Did you mean {', '.join('@' + c for c in close)}?" if close else (
                    "Check the address, or import the person with `crier directory import`."
                )
                raise CrierError(f"nobody in the directory has the email `{term.value}`", hint)
            cond = col(PersonRow.email) == term.value
        (exclude if term.exclude else include).append(cond)

    where = [active]
    where.append(or_(*include) if include else true())
    if exclude:
        where.append(not_(or_(*exclude)))
    if not include and not exclude:
        where.append(false())
    condition = and_(*where)
    rows = session.execute(
        select(col(PersonRow.department), col(PersonRow.location), func.count())
        .where(condition)
        .group_by(col(PersonRow.department), col(PersonRow.location))
    ).tuples().all()
    members = [Member(dept, loc, n) for dept, loc, n in rows]
    if not members:
        raise CrierError(
            f"the audience `{spec}` reaches nobody",
            "Check the exclusions, or that the directory has active people there.",
        )
    return Resolved(spec, members, condition)


def _unknown(what: str, name: str, known: list[str], other: list[str]) -> CrierError:
    close = _suggest(name, known)
    if what == "department" and name.lower() in {o.lower() for o in other}:
        return CrierError(
            f"`{name}` is a location, not a department",
            f"Write `loc:{name}` to reach everyone there.",
        )
    if close:
        shown = ", ".join(f"`loc:{c}`" if what == "location" else f"`{c}`" for c in close)
        hint = f"Did you mean {shown}?"
        spaced = next((c for c in close if " " in c), None)
        if spaced is not None:
            quoted = f'to:"loc:{spaced}"' if what == "location" else f'to:"{spaced}"'
            hint += f" Put a name with spaces in quotes: {quoted}."
    else:
        listed = ", ".join(sorted(known)[:12])
        hint = f"Known {what}s: {listed}." if listed else f"The directory has no {what}s yet."
    return CrierError(f"unknown {what} `{name}`", hint)
