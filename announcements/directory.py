"""The employee directory: importing it from CSV, and granting and revoking roles.

A directory file is CSV in UTF-8 (a byte-order mark is allowed) whose first line
names the columns: ``email,name,department`` are required,
``location,title,timezone,slack_id,telegram_id,teams_id,roles`` optional.

Rules of an import, each enforced once below:
- Every row is checked before anything is written; one problem anywhere means
  nothing is written, and every problem is reported with its line number.
- People are matched by email (compared in lower case); a re-import updates
  them, never duplicates them, and marks them active.
- A column present in the header is the truth for every row; an absent column
  leaves what is stored alone. Platform ids are the exception: an empty
  ``slack_id``/``telegram_id``/``teams_id`` cell leaves the stored link alone,
  since links also come from platform sync.
- A ``roles`` column replaces each listed person's grants with those in the
  cell, so an empty cell removes them all.
- People missing from the file are left as they are.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TextIO, cast
from zoneinfo import available_timezones

from sqlalchemy import Table, delete, func, insert, update
from sqlmodel import Session, SQLModel, col, select

from announcements import audit
from announcements.clock import Clock, SystemClock
from announcements.errors import CrierError
from announcements.timespec import zone
from announcements.types import Role
from storage.db import Database
from storage.models import Identity, Person, RoleGrant

REQUIRED_COLUMNS = ("email", "name", "department")
OPTIONAL_COLUMNS = (
    "location", "title", "timezone", "slack_id", "telegram_id", "teams_id", "roles",
)
EXPECTED_HEADER = ",".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
#: CSV column -> ``Identity.platform``.
PLATFORM_COLUMNS = {"slack_id": "slack", "telegram_id": "telegram", "teams_id": "teams"}
#: Columns stored on the person row itself, besides the email.
PERSON_COLUMNS = ("name", "department", "location", "title", "timezone")
DEFAULT_TIMEZONE = "UTC"
ANY_SCOPE = "*"
LOCATION_PREFIX = "loc:"
SCOPE_FORMS = "A scope is `*` (everyone), a department name, or `loc:City`."
#: An error message lists at most this many problems; ``problems`` holds them all.
MAX_SHOWN_PROBLEMS = 50

#: ``local@domain.tld``; letters may be any script (internationalized addresses).
_EMAIL = re.compile(
    r"[\w!#$%&'*+/=?^`{|}~.-]+@[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)+"
)
#: Length limits of the person columns, read from the table so they are stated once.
_MAX_LENGTHS: dict[str, int] = {
    name: Person.__table__.c[name].type.length  # type: ignore[attr-defined]
    for name in (*PERSON_COLUMNS, "email")
}
_PLATFORM_ID = re.compile(r"\S{1,200}")
_IN_CHUNK = 500  # ids per ``IN (...)``, well under every database's parameter limit

HEADER_HINT = (
    f"The first line must name the columns, for example:\n{EXPECTED_HEADER}\n"
    "(email, name and department are required; the others are optional)"
)


class DirectoryImportError(CrierError):
    """A directory file was refused; ``problems`` lists every one, by line."""

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        shown = [f"  {p}" for p in self.problems[:MAX_SHOWN_PROBLEMS]]
        if count > MAX_SHOWN_PROBLEMS:
            shown.append(f"  ... and {count - MAX_SHOWN_PROBLEMS} more")
        noun = "problem" if count == 1 else "problems"
        message = f"the directory file has {count} {noun}; nothing was imported:\n"
        super().__init__(
            message + "\n".join(shown), hint or "Fix these lines and import the file again."
        )


@dataclass(frozen=True)
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged

    def summary(self) -> str:
        noun = "person" if self.total == 1 else "people"
        return (
            f"{self.total} {noun}: {self.created} added, {self.updated} updated, "
            f"{self.unchanged} unchanged"
        )


# --------------------------------------------------------------------------- import


@dataclass
class _Row:
    """One validated line of the file."""

    line: int
    email: str
    person: dict[str, str | None]  # the PERSON_COLUMNS the header has
    identities: dict[str, str]  # platform -> platform user id (non-empty cells only)
    grants: set[tuple[str, str]] | None  # (role, scope); None when there is no roles column


@dataclass
class _Stored:
    """What the database holds before the import, loaded with one query per table."""

    people: dict[str, dict[str, Any]]  # lower-case email -> person columns incl. id, active
    emails: dict[int, str]  # person id -> email
    identities: dict[tuple[int, str], tuple[int, str]]  # (person, platform) -> (id, user id)
    owners: dict[tuple[str, str], int]  # (platform, user id) -> person id
    grants: dict[int, dict[tuple[str, str], int]]  # person -> (role, scope) -> grant id
    departments: dict[str, str]  # lower case -> spelling
    locations: dict[str, str]


@dataclass
class _Plan:
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    identity_deletes: list[int] = field(default_factory=list)
    identity_inserts: list[tuple[str, str, str]] = field(default_factory=list)  # email,platform,uid
    grant_deletes: list[int] = field(default_factory=list)
    grant_inserts: list[tuple[str, str, str]] = field(default_factory=list)  # email, role, scope
    result: ImportResult = field(default_factory=ImportResult)


def import_csv(db: Database, source: str | Path | TextIO, clock: Clock) -> ImportResult:
    """Create or update the people of a directory file, all or nothing.

    ``source`` is a file path (``str`` or ``Path``) or an open text stream.
    """
    records = _read_records(source)
    if not records:
        raise DirectoryImportError(["line 1: the file is empty"], HEADER_HINT)
    _, header = records[0]
    columns = _read_header(header)
    with db.session() as session:
        stored = _load_stored(session, with_grants="roles" in columns)
        rows, problems = _validate(records[1:], len(header), columns, stored)
        if problems:
            raise DirectoryImportError(problems)
        plan = _plan(rows, stored, clock)
        admins_before = _admin_count(session)
        _execute(session, plan, clock)
        if admins_before and not _admin_count(session):
            raise DirectoryImportError(
                ["the roles column of this file would take the admin role from everyone"],
                "Give at least one person `admin` in the roles column (or leave the cell of "
                "today's admins as it is). Nothing was imported.",
            )
    return plan.result


def _admin_count(session: Session) -> int:
    return session.execute(
        select(func.count()).select_from(RoleGrant).where(RoleGrant.role == Role.ADMIN.value)
    ).scalar_one()


def _read_records(source: str | Path | TextIO) -> list[tuple[int, list[str]]]:
    if not isinstance(source, str | Path):
        return _parse_csv(source, "the input")
    path = Path(source)
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return _parse_csv(stream, str(path))
    except FileNotFoundError:
        raise CrierError(f"there is no file {path}", "Check the path and try again.") from None
    except IsADirectoryError:
        raise CrierError(f"{path} is a folder, not a CSV file") from None


def _parse_csv(stream: TextIO, name: str) -> list[tuple[int, list[str]]]:
    """Non-blank CSV records with the line each starts on (the header is line 1)."""
    reader = csv.reader(stream)
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append((start, cells))
            start = reader.line_num + 1
    except UnicodeDecodeError:
        raise DirectoryImportError(
            [f"line {start}: {name} is not UTF-8 text"],
            "Save the file as \"CSV UTF-8\" and import it again.",
        ) from None
    except csv.Error as exc:
        raise DirectoryImportError([f"line {start}: {exc}"]) from None
    if records and records[0][1]:
        records[0][1][0] = records[0][1][0].lstrip("\ufeff")
    return records


def _column_name(raw: str) -> str:
    """Header names are case-insensitive; ``Slack ID`` and ``slack-id`` mean ``slack_id``."""
    return re.sub(r"[\s-]+", "_", raw.strip().lower())


def _read_header(cells: list[str]) -> dict[str, int]:
    """Column name -> index. Unknown columns are ignored unless they look like a typo."""
    known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    columns: dict[str, int] = {}
    problems: list[str] = []
    for index, raw in enumerate(cells):
        name = _column_name(raw)
        if name in columns:
            problems.append(f'line 1: the column "{name}" appears twice')
        elif name in known:
            columns[name] = index
        elif name and (close := difflib.get_close_matches(name, known, n=1, cutoff=0.8)):
            problems.append(f'line 1: unknown column "{raw.strip()}" (did you mean {close[0]}?)')
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        problems.insert(0, f"line 1: the header lacks the required column(s) {', '.join(missing)}")
        if any("@" in cell for cell in cells):
            problems.insert(1, "line 1 looks like a person, not a header")
    if problems:
        raise DirectoryImportError(problems, HEADER_HINT)
    return columns


def _load_stored(session: Session, *, with_grants: bool) -> _Stored:
    people: dict[str, dict[str, Any]] = {}
    emails: dict[int, str] = {}
    departments: dict[str, str] = {}
    locations: dict[str, str] = {}
    names = ("id", "email", "active", *PERSON_COLUMNS)
    query = select(*(getattr(Person, name) for name in names))
    for row in session.execute(query).all():
        values = dict(zip(names, row, strict=True))
        people[values["email"].lower()] = values
        emails[values["id"]] = values["email"]
        departments.setdefault(values["department"].lower(), values["department"])
        if values["location"]:
            locations.setdefault(values["location"].lower(), values["location"])
    identities: dict[tuple[int, str], tuple[int, str]] = {}
    owners: dict[tuple[str, str], int] = {}
    links = select(Identity.id, Identity.person_id, Identity.platform, Identity.platform_user_id)
    for ident_id, person_id, platform, user_id in session.execute(links).all():
        identities[(person_id, platform)] = (int(ident_id or 0), user_id)
        owners[(platform, user_id)] = person_id
    grants: dict[int, dict[tuple[str, str], int]] = {}
    if with_grants:
        query_grants = select(RoleGrant.id, RoleGrant.person_id, RoleGrant.role, RoleGrant.scope)
        for grant_id, person_id, role, scope in session.execute(query_grants).all():
            grants.setdefault(person_id, {})[(role, scope)] = int(grant_id or 0)
    return _Stored(people, emails, identities, owners, grants, departments, locations)


def _validate(
    records: list[tuple[int, list[str]]],
    width: int,
    columns: dict[str, int],
    stored: _Stored,
) -> tuple[list[_Row], list[str]]:
    """Check every row; return the rows and every problem, ordered by line."""
    departments, locations = _places_in_file(records, columns, stored)
    context = _Context(width, columns, departments, locations)
    problems: list[tuple[int, str]] = []
    rows: list[_Row] = []
    first_line: dict[str, int] = {}
    for line, cells in records:
        row, found = _parse_row(line, cells, context)
        problems.extend((line, text) for text in found)
        if row is None:
            continue
        if row.email in first_line:
            problems.append(
                (line, f'email "{row.email}" already appears on line {first_line[row.email]}')
            )
            continue
        first_line[row.email] = line
        rows.append(row)
    problems.extend(_identity_conflicts(rows, stored))
    problems.sort(key=lambda item: item[0])
    return rows, [f"line {line}: {text}" for line, text in problems]


def _places_in_file(
    records: list[tuple[int, list[str]]], columns: dict[str, int], stored: _Stored
) -> tuple[dict[str, str], dict[str, str]]:
    """Departments and locations a role scope may name; the file's spelling wins."""
    departments: dict[str, str] = {}
    locations: dict[str, str] = {}
    for _, cells in records:
        for name, found in (("department", departments), ("location", locations)):
            value = _cell(cells, columns, name)
            if value:
                found.setdefault(value.lower(), value)
    return stored.departments | departments, stored.locations | locations


def _cell(cells: list[str], columns: Mapping[str, int], name: str) -> str:
    index = columns.get(name)
    if index is None or index >= len(cells):
        return ""
    return cells[index].strip()


@dataclass
class _Context:
    """What checking a row needs besides the row."""

    width: int  # cells in the header
    columns: dict[str, int]
    departments: Mapping[str, str]
    locations: Mapping[str, str]
    zones: dict[str, str | None] = field(default_factory=dict)  # as written -> IANA name


def _parse_row(line: int, cells: list[str], context: _Context) -> tuple[_Row | None, list[str]]:
    """The row and its problems; the row is None only when it has no usable email."""
    columns = context.columns
    problems: list[str] = []
    if any(cell.strip() for cell in cells[context.width :]):
        problems.append(
            f"has {len(cells)} values but the header names {context.width} columns "
            '(put "quotes" around a value that contains a comma)'
        )
    raw_email = _cell(cells, columns, "email")
    email = raw_email.lower()
    email_problem = _email_problem(raw_email)
    if email_problem:
        problems.append(email_problem)
    person: dict[str, str | None] = {}
    for name in PERSON_COLUMNS:
        if name in columns:
            person[name] = _cell(cells, columns, name) or None
    for name in ("name", "department"):
        if not person[name]:
            problems.append(f"{name} is missing")
    for name, value in person.items():
        if value and len(value) > _MAX_LENGTHS[name]:
            problems.append(f"{name} is longer than {_MAX_LENGTHS[name]} characters")
    if "timezone" in person:
        wanted = person["timezone"] or DEFAULT_TIMEZONE
        if wanted not in context.zones:
            context.zones[wanted] = _canonical_zone(wanted)
        person["timezone"] = context.zones[wanted]
        if person["timezone"] is None:
            problems.append(_unknown_zone(wanted))
    identities = _platform_ids(cells, columns, problems)
    grants: set[tuple[str, str]] | None = None
    if "roles" in columns:
        text = _cell(cells, columns, "roles")
        grants = _parse_roles(text, context.departments, context.locations, problems)
    if email_problem:
        return None, problems
    return _Row(line, email, person, identities, grants), problems


def _email_problem(raw: str) -> str | None:
    """Emails are compared in lower case and must look like ``name@domain.tld``."""
    if not raw:
        return "email is missing"
    if len(raw) > _MAX_LENGTHS["email"] or not _EMAIL.fullmatch(raw.lower()):
        return f'email "{raw}" is not a valid email address'
    return None


def _platform_ids(cells: list[str], columns: dict[str, int], problems: list[str]) -> dict[str, str]:
    identities: dict[str, str] = {}
    for column, platform in PLATFORM_COLUMNS.items():
        value = _cell(cells, columns, column)
        if not value:
            continue
        if not _PLATFORM_ID.fullmatch(value):
            problems.append(f'{column} "{value}" is not a {platform} user id')
        else:
            identities[platform] = value
    return identities


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def _canonical_zone(name: str) -> str | None:
    """The IANA spelling of a time zone written in any case; None if there is none."""
    if name.lower() in _zone_names():
        return _zone_names()[name.lower()]
    try:
        zone(name)
    except CrierError:
        return None
    return name


def _unknown_zone(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), _zone_names(), n=1, cutoff=0.7)
    if close:
        return f'time zone "{name}" is unknown (did you mean {_zone_names()[close[0]]}?)'
    return f'time zone "{name}" is unknown (use an IANA name such as Europe/Berlin)'


def _parse_roles(
    text: str,
    departments: Mapping[str, str],
    locations: Mapping[str, str],
    problems: list[str],
) -> set[tuple[str, str]]:
    """``author:Engineering;approver:*;admin`` -> {(role, scope)}; no scope means ``*``."""
    grants: set[tuple[str, str]] = set()
    for item in text.split(";"):
        if not item.strip():
            continue
        name, has_scope, raw_scope = item.partition(":")
        try:
            role = parse_role(name)
            scope = resolve_scope(raw_scope if has_scope else ANY_SCOPE, departments, locations)
        except CrierError as exc:
            problems.append(f'roles "{item.strip()}": {exc.message}')
            continue
        grants.add((role.value, scope))
    return grants


def _identity_conflicts(rows: list[_Row], stored: _Stored) -> list[tuple[int, str]]:
    """A platform user id belongs to one person, counting both the file and the database.

    A stored id may move to someone else only when its owner's row gives them a new one.
    """
    problems: list[tuple[int, str]] = []
    claims: dict[tuple[str, str], _Row] = {}
    by_email = {row.email: row for row in rows}
    columns = {platform: column for column, platform in PLATFORM_COLUMNS.items()}
    for row in rows:
        own_id = stored.people.get(row.email, {}).get("id")
        for platform, user_id in row.identities.items():
            key = (platform, user_id)
            what = f'{columns[platform]} "{user_id}"'
            if key in claims:
                other = claims[key]
                problems.append(
                    (row.line, f"{what} is also given to {other.email} on line {other.line}")
                )
                continue
            claims[key] = row
            owner = stored.owners.get(key)
            if owner is None or owner == own_id:
                continue
            owner_email = stored.emails[owner]
            owner_row = by_email.get(owner_email.lower())
            if owner_row is None or platform not in owner_row.identities:
                problems.append((row.line, f"{what} already belongs to {owner_email}"))
    return problems


def _plan(rows: list[_Row], stored: _Stored, clock: Clock) -> _Plan:
    """Turn validated rows into the inserts, updates and deletes that make them true."""
    now = clock.now()
    plan = _Plan()
    created = updated = unchanged = 0
    # One spelling per department and location: the directory's, else the file's first.
    spellings = {"department": dict(stored.departments), "location": dict(stored.locations)}
    for row in rows:
        for column, known in spellings.items():
            value = row.person.get(column)
            if value:
                row.person[column] = known.setdefault(value.lower(), value)
    for row in rows:
        current = stored.people.get(row.email)
        if current is None:
            plan.inserts.append(_new_person(row, now))
            plan.identity_inserts.extend((row.email, p, u) for p, u in row.identities.items())
            plan.grant_inserts.extend((row.email, r, s) for r, s in sorted(row.grants or ()))
            created += 1
            continue
        changes: dict[str, Any] = {k: v for k, v in row.person.items() if current[k] != v}
        if not current["active"]:
            changes["active"] = True
        links_changed = _plan_identities(row, current["id"], stored, plan)
        grants_changed = _plan_grants(row, current["id"], stored, plan)
        if changes or links_changed or grants_changed:
            plan.updates.append({"id": current["id"], **changes, "updated_at": now})
            updated += 1
        else:
            unchanged += 1
    plan.result = ImportResult(created, updated, unchanged)
    return plan


def _new_person(row: _Row, now: Any) -> dict[str, Any]:
    return {
        "email": row.email,
        "name": row.person["name"],
        "department": row.person["department"],
        "location": row.person.get("location"),
        "title": row.person.get("title"),
        "timezone": row.person.get("timezone") or DEFAULT_TIMEZONE,
        "active": True,
        "created_at": now,
        "updated_at": now,
    }


def _plan_identities(row: _Row, person_id: int, stored: _Stored, plan: _Plan) -> bool:
    """Keep links that match; a changed link is deleted and written anew."""
    changed = False
    for platform, user_id in row.identities.items():
        existing = stored.identities.get((person_id, platform))
        if existing is not None and existing[1] == user_id:
            continue
        if existing is not None:
            plan.identity_deletes.append(existing[0])
        plan.identity_inserts.append((row.email, platform, user_id))
        changed = True
    return changed


def _plan_grants(row: _Row, person_id: int, stored: _Stored, plan: _Plan) -> bool:
    if row.grants is None:
        return False
    current = stored.grants.get(person_id, {})
    gone = [grant_id for key, grant_id in current.items() if key not in row.grants]
    new = sorted(row.grants - current.keys())
    plan.grant_deletes.extend(gone)
    plan.grant_inserts.extend((row.email, role, scope) for role, scope in new)
    return bool(gone or new)


def _execute(session: Session, plan: _Plan, clock: Clock) -> None:
    """Write a plan with a fixed number of statements, however many rows it has."""
    _delete_ids(session, Identity, plan.identity_deletes)
    _delete_ids(session, RoleGrant, plan.grant_deletes)
    if plan.updates:
        session.execute(update(Person), params=plan.updates)
    if plan.inserts:
        session.execute(insert(_table(Person)), params=plan.inserts)
    if not (plan.identity_inserts or plan.grant_inserts):
        return
    ids = {email.lower(): pid for pid, email in session.execute(select(Person.id, Person.email))}
    now = clock.now()
    if plan.identity_inserts:
        session.execute(
            insert(_table(Identity)),
            params=[
                {"person_id": ids[e], "platform": p, "platform_user_id": u, "linked_at": now}
                for e, p, u in plan.identity_inserts
            ],
        )
    if plan.grant_inserts:
        session.execute(
            insert(_table(RoleGrant)),
            params=[{"person_id": ids[e], "role": r, "scope": s} for e, r, s in plan.grant_inserts],
        )


def _table(model: type[SQLModel]) -> Table:
    """The Core table of a model: bulk inserts skip the ORM's per-row bookkeeping."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def _delete_ids(session: Session, table: type[Identity] | type[RoleGrant], ids: list[int]) -> None:
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        session.execute(
            delete(table).where(col(table.id).in_(chunk)),
            execution_options={"synchronize_session": False},
        )


# --------------------------------------------------------------------------- roles


def parse_role(name: str) -> Role:
    """A role name in any case; an unknown one is an error listing the valid ones."""
    text = name.strip().lower()
    try:
        return Role(text)
    except ValueError:
        valid = [role.value for role in Role]
        close = difflib.get_close_matches(text, valid, n=1, cutoff=0.6)
        guess = f" (did you mean {close[0]}?)" if close else ""
        raise CrierError(
            f'unknown role "{name.strip()}"{guess}; the roles are {", ".join(valid)}',
            f"Write one of {', '.join(valid)}.",
        ) from None


def resolve_scope(
    raw: str, departments: Mapping[str, str], locations: Mapping[str, str]
) -> str:
    """A scope is ``*``, ``loc:City`` (any city), or an existing department in any case.

    ``departments`` and ``locations`` map lower-case names to their stored spelling,
    which the returned scope uses.
    """
    text = raw.strip()
    if text == ANY_SCOPE:
        return ANY_SCOPE
    if text.lower().startswith(LOCATION_PREFIX):
        city = text[len(LOCATION_PREFIX) :].strip()
        if not city:
            raise CrierError('the scope "loc:" names no location', SCOPE_FORMS)
        return LOCATION_PREFIX + locations.get(city.lower(), city)
    if text.lower() in departments:
        return departments[text.lower()]
    if not text:
        raise CrierError("the scope is empty", SCOPE_FORMS)
    close = difflib.get_close_matches(text.lower(), departments, n=3, cutoff=0.6)
    guess = " or ".join(departments[name] for name in close)
    suffix = f" (did you mean {guess}?)" if guess else ""
    raise CrierError(f'there is no department "{text}"{suffix}', SCOPE_FORMS)


def grant_role(
    db: Database, email: str, role: str, scope: str = ANY_SCOPE, clock: Clock | None = None
) -> str:
    """Give a person a role over a scope. Granting what they already have changes nothing."""
    the_role = parse_role(role)
    with db.session() as session:
        person = _find_person(session, email)
        departments, locations = _places(session)
        the_scope = resolve_scope(scope, departments, locations)
        what = describe_grant(the_role.value, the_scope)
        if _find_grant(session, person, the_role.value, the_scope) is not None:
            return f"{_who(person)} already has {what}; nothing changed."
        assert person.id is not None
        session.add(RoleGrant(person_id=person.id, role=the_role.value, scope=the_scope))
        _touch(session, person, clock)
        audit.record(session, (clock or SystemClock()).now(), "role_granted",
                     person=person.email, role=the_role.value, scope=the_scope)
        return f"Granted {what} to {_who(person)}."


def revoke_role(
    db: Database, email: str, role: str, scope: str = ANY_SCOPE, clock: Clock | None = None
) -> str:
    """Take a role over a scope away. A scope is matched in any case, even for a
    department that no longer exists."""
    the_role = parse_role(role)
    with db.session() as session:
        person = _find_person(session, email)
        the_scope = _spelled_scope(session, scope)
        grant = _find_grant(session, person, the_role.value, the_scope)
        if grant is None:
            held = _held(session, person)
            return (
                f"{_who(person)} does not have {describe_grant(the_role.value, the_scope)}; "
                f"nothing to revoke. Their roles: {held}."
            )
        what = describe_grant(grant.role, grant.scope)
        if grant.role == Role.ADMIN.value and _admin_count(session) == 1:
            raise CrierError(f"{_who(person)} is the last admin",
                             "Grant admin to someone else first, then revoke this one.")
        session.delete(grant)
        _touch(session, person, clock)
        audit.record(session, (clock or SystemClock()).now(), "role_revoked",
                     person=person.email, role=grant.role, scope=grant.scope)
        return f"Revoked {what} from {_who(person)}."


def _spelled_scope(session: Session, scope: str) -> str:
    """A scope as stored when it names a place that exists, else as written."""
    try:
        return resolve_scope(scope.strip() or ANY_SCOPE, *_places(session))
    except CrierError:
        return scope.strip()


def describe_grant(role: str, scope: str) -> str:
    """``author over Engineering``, ``approver over everyone``, ``admin``."""
    if scope == ANY_SCOPE:
        return role if role == Role.ADMIN.value else f"{role} over everyone"
    return f"{role} over {scope}"


def _find_person(session: Session, email: str) -> Person:
    wanted = email.strip().lower()
    person = session.exec(select(Person).where(Person.email == wanted)).first()
    if person is not None:
        return person
    emails = list(session.exec(select(Person.email)).all())
    close = difflib.get_close_matches(wanted, emails, n=3, cutoff=0.85)
    guess = f" (did you mean {' or '.join(close)}?)" if close else ""
    raise CrierError(
        f'there is no "{email.strip()}" in the directory{guess}',
        "Check the address, or import the directory with `crier directory import FILE.csv`.",
    )


def _find_grant(session: Session, person: Person, role: str, scope: str) -> RoleGrant | None:
    query = select(RoleGrant).where(
        RoleGrant.person_id == person.id,
        RoleGrant.role == role,
        func.lower(RoleGrant.scope) == scope.lower(),
    )
    return session.exec(query).first()


def _held(session: Session, person: Person) -> str:
    grants = session.exec(select(RoleGrant).where(RoleGrant.person_id == person.id)).all()
    return ", ".join(sorted(describe_grant(g.role, g.scope) for g in grants)) or "none"


def _places(session: Session) -> tuple[dict[str, str], dict[str, str]]:
    """Existing departments and locations, lower case -> stored spelling."""
    departments = _spellings(session.exec(select(Person.department).distinct()).all())
    locations = _spellings(session.exec(select(Person.location).distinct()).all())
    return departments, locations


def _spellings(names: Iterable[str | None]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in sorted(n for n in names if n):
        found.setdefault(name.lower(), name)
    return found


def _touch(session: Session, person: Person, clock: Clock | None) -> None:
    """A change of roles is a change of the person: it moves ``updated_at``."""
    person.updated_at = (clock or SystemClock()).now()
    session.add(person)


def _who(person: Person) -> str:
    return f"{person.name} <{person.email}>"
