"""The one way people and their accounts enter the directory.

CSV import, Slack sync and (later) Microsoft Graph sync all hand ``apply``
neutral ``PersonRecord``s. Rules, each enforced once here:
- Every record is checked before anything is written; one problem anywhere
  means nothing is written, and every problem is reported with its origin.
- People are matched by email (lower case); a record updates them, never
  duplicates them, and marks them active. A field the record does not give
  stays as stored.
- One spelling per department and location: the directory's, else the first
  record's. A new name that looks like a typo of an existing one is refused
  unless the policy says new names are intended (``places.likely_typos``).
- A platform account belongs to one person. Only the platform itself (the
  policy's ``owns_platform``) may move an account from one person to another.
- Leavers and, with ``deactivate_missing``, people in no record are marked
  inactive, never deleted (receipts and the audit log keep pointing at them).
- The directory keeps an active admin (``roles.keep_an_admin``).
- Every change is written to the audit log, with the source that made it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from announcements.clock import Clock
from announcements.directory.places import likely_typos
from announcements.directory.plan import Checked, Stored, execute, load, make_plan
from announcements.directory.records import (
    DirectoryImportError,
    ImportResult,
    PersonRecord,
    UpsertPolicy,
)
from announcements.directory.roles import active_admins, keep_an_admin, parse_grants
from announcements.errors import CrierError
from storage.db import Database

#: Which policy flag lets each kind of place be new, for the refusal's wording.
NEW_PLACE_FLAGS = {"department": "--new-departments", "location": "--new-locations"}


def apply(
    db: Database,
    records: Iterable[PersonRecord],
    policy: UpsertPolicy,
    clock: Clock,
    problems: Iterable[tuple[int, str]] = (),
    *,
    subject: str = "the directory file",
    action: str = "this import",
) -> ImportResult:
    """Make the directory agree with ``records``, all or nothing.

    ``problems`` are (position, text) the source found already (a bad line of a
    file); they are reported together with the ones found here. ``subject`` and
    ``action`` name the source in refusals ("the Slack directory", "this Slack sync").
    """
    everyone = list(records)
    active = [r for r in everyone if r.active]
    leavers = [r for r in everyone if not r.active]
    now = clock.now()
    with db.session() as session:
        stored = load(session, with_grants=any(r.roles is not None for r in active))
        found = list(problems)
        notes: list[str] = []
        rows = _check(active, stored, policy, found, notes)
        if found:
            ordered = sorted(dict.fromkeys(found), key=lambda item: item[0])
            raise DirectoryImportError([text for _, text in ordered], what=subject)
        plan = make_plan(rows, leavers, stored, policy, now)
        admins = active_admins(session)
        execute(session, plan, now)
        try:
            keep_an_admin(session, admins, action)
        except CrierError as exc:
            raise DirectoryImportError([exc.message], exc.hint, what=subject) from None
    return replace(plan.result, notes=tuple(notes))


def _check(records: list[PersonRecord], stored: Stored, policy: UpsertPolicy,
           problems: list[tuple[int, str]], notes: list[str]) -> list[Checked]:
    """The records that may be written, with their roles resolved; the rest become problems
    (or ``notes`` where the policy allows them)."""
    seen: dict[str, PersonRecord] = {}
    unique: list[PersonRecord] = []
    for record in records:
        if record.email in seen:
            problems.append((record.position, f'{record.origin}: email "{record.email}" '
                                              f"already appears on {seen[record.email].origin}"))
            continue
        seen[record.email] = record
        unique.append(record)
    departments = _spellings(unique, "department") | stored.departments
    locations = _spellings(unique, "location") | stored.locations
    _check_new_places(unique, stored, policy, problems, notes)
    rows: list[Checked] = []
    for record in unique:
        found: list[str] = []
        if record.email not in stored.people and not (record.department
                                                      or policy.default_department):
            found.append("department is missing")
        grants = None
        if record.roles is not None:
            grants = parse_grants(record.roles, departments, locations, found)
        problems.extend((record.position, f"{record.origin}: {text}") for text in found)
        rows.append(Checked(_spelled(record, departments, locations), grants))
    problems.extend(_identity_conflicts(unique, stored, policy))
    return rows


def _spellings(records: list[PersonRecord], column: str) -> dict[str, str]:
    """The first spelling the records use of each name, lower case -> spelling."""
    found: dict[str, str] = {}
    for record in records:
        value = getattr(record, column)
        if value:
            found.setdefault(value.lower(), value)
    return found


def _spelled(record: PersonRecord, departments: Mapping[str, str],
             locations: Mapping[str, str]) -> PersonRecord:
    """The record with its department and location spelled as the directory spells them
    (a new name: as the first record spells it)."""
    department, location = record.department, record.location
    if department and department.lower() in departments:
        department = departments[department.lower()]
    if location and location.lower() in locations:
        location = locations[location.lower()]
    return replace(record, department=department, location=location)


def _check_new_places(records: list[PersonRecord], stored: Stored, policy: UpsertPolicy,
                      problems: list[tuple[int, str]], notes: list[str]) -> None:
    """A new department or location close to an existing one is refused, record by
    record; where the policy says new names are intended, it is only noted, once."""
    for column, known, allowed in (
        ("department", stored.departments, policy.new_departments),
        ("location", stored.locations, policy.new_locations),
    ):
        named = [(r, getattr(r, column)) for r in records if getattr(r, column)]
        typos = likely_typos([value for _, value in named], known)
        if allowed:
            notes.extend(f'New {column} "{value}" looks like "{typos[value.lower()]}"; '
                         "fix the spelling at the source if it is a typo."
                         for value in sorted({v for _, v in named if v.lower() in typos}))
            continue
        for record, value in named:
            if value.lower() in typos:
                problems.append((record.position, (
                    f'{record.origin}: {column} "{value}" would be a new {column} '
                    f"(did you mean {typos[value.lower()]}?); if it is new, import with "
                    f"{NEW_PLACE_FLAGS[column]}")))


def _identity_conflicts(records: list[PersonRecord], stored: Stored,
                        policy: UpsertPolicy) -> list[tuple[int, str]]:
    """A platform user id belongs to one person, counting both the records and the database.

    A stored id may move to someone else only when its owner's record gives them a
    new one, or when the source is the platform itself.
    """
    problems: list[tuple[int, str]] = []
    claims: dict[tuple[str, str], PersonRecord] = {}
    by_email = {record.email: record for record in records}
    for record in records:
        own = stored.people.get(record.email, {}).get("id")
        for platform, user_id in record.identities.items():
            key = (platform, user_id)
            what = f'{platform}_id "{user_id}"'
            if key in claims:
                other = claims[key]
                problems.append((record.position, f"{record.origin}: {what} is also given to "
                                                  f"{other.email} on {other.origin}"))
                continue
            claims[key] = record
            owner = stored.owners.get(key)
            if owner is None or owner == own or platform == policy.owns_platform:
                continue
            owner_email = stored.emails[owner]
            owner_record = by_email.get(owner_email.lower())
            if owner_record is None or platform not in owner_record.identities:
                problems.append((record.position,
                                 f"{record.origin}: {what} already belongs to {owner_email}"))
    return problems
