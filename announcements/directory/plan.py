"""The directory before a change, and the statements that make the records true.

``load`` reads what is stored with one query per table; ``make_plan`` turns
checked records into inserts, updates and deletes; ``execute`` writes them
with a fixed number of statements, however many people there are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, update
from sqlmodel import Session, SQLModel, col, select

from announcements import audit
from announcements.directory.records import (
    DEFAULT_TIMEZONE,
    PERSON_COLUMNS,
    ImportResult,
    PersonRecord,
    UpsertPolicy,
)
from storage.models import Identity, Person, RoleGrant

_IN_CHUNK = 500  # ids per ``IN (...)``, well under every database's parameter limit
#: Columns a record clears with an empty value.
CLEARABLE = ("location", "title")


@dataclass
class Stored:
    """What the database holds before the change."""

    people: dict[str, dict[str, Any]]  # lower-case email -> person columns incl. id, active
    emails: dict[int, str]  # person id -> email
    identities: dict[tuple[int, str], tuple[int, str]]  # (person, platform) -> (id, user id)
    owners: dict[tuple[str, str], int]  # (platform, user id) -> person id
    grants: dict[int, dict[tuple[str, str], int]]  # person -> (role, scope) -> grant id
    departments: dict[str, str]  # lower case -> spelling
    locations: dict[str, str]


@dataclass
class Checked:
    """A record that passed every check, with its roles resolved."""

    record: PersonRecord
    grants: set[tuple[str, str]] | None  # (role, scope); None leaves roles alone


@dataclass
class Plan:
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    identity_deletes: list[int] = field(default_factory=list)
    identity_inserts: list[tuple[str, str, str]] = field(default_factory=list)  # email,platform,uid
    grant_deletes: list[int] = field(default_factory=list)
    grant_inserts: list[tuple[str, str, str]] = field(default_factory=list)  # email, role, scope
    #: (action, detail) for the audit log, one per change.
    audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    result: ImportResult = field(default_factory=ImportResult)


def load(session: Session, *, with_grants: bool) -> Stored:
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
    return Stored(people, emails, identities, owners, grants, departments, locations)


def make_plan(rows: list[Checked], leavers: list[PersonRecord], stored: Stored,
              policy: UpsertPolicy, now: datetime) -> Plan:
    """The inserts, updates and deletes that make the records true."""
    plan = Plan()
    created = updated = unchanged = 0
    source = {"source": policy.source}
    for row in rows:
        record = row.record
        current = stored.people.get(record.email)
        if current is None:
            person = _new_person(record, policy, now)
            plan.inserts.append(person)
            plan.audit.append(("person_added", {"person": record.email, **source}))
            _plan_identities(row, None, stored, policy, plan)
            plan.grant_inserts.extend((record.email, r, s) for r, s in sorted(row.grants or ()))
            plan.audit.extend(("role_granted", {"person": record.email, "role": r, "scope": s,
                                                **source}) for r, s in sorted(row.grants or ()))
            created += 1
            continue
        changes: dict[str, Any] = {k: _stored_value(k, v) for k, v in record.given().items()
                                   if current[k] != _stored_value(k, v)}
        if not current["active"]:
            changes["active"] = True
        if changes:
            # Which fields changed, not their values: audit rows outlive an erasure.
            plan.audit.append(("person_updated", {"person": record.email,
                                                  "fields": sorted(changes), **source}))
        links_changed = _plan_identities(row, current["id"], stored, policy, plan)
        grants_changed = _plan_grants(row, current["id"], stored, plan, source)
        if changes or links_changed or grants_changed:
            plan.updates.append({"id": current["id"], **changes, "updated_at": now})
            updated += 1
        else:
            unchanged += 1
    deactivated = _plan_deactivations(rows, leavers, stored, policy, plan, now)
    linked = len(plan.identity_inserts)
    plan.result = ImportResult(created, updated, unchanged, deactivated, linked)
    return plan


def _stored_value(column: str, value: str | None) -> str | None:
    return (value or None) if column in CLEARABLE else value


def _new_person(record: PersonRecord, policy: UpsertPolicy, now: datetime) -> dict[str, Any]:
    return {
        "email": record.email,
        "name": record.name or record.email,
        "department": record.department or policy.default_department,
        "location": record.location or None,
        "title": record.title or None,
        "timezone": record.timezone or DEFAULT_TIMEZONE,
        "active": True,
        "created_at": now,
        "updated_at": now,
    }


def _plan_identities(row: Checked, person_id: int | None, stored: Stored,
                     policy: UpsertPolicy, plan: Plan) -> bool:
    """Keep links that match; a changed link is deleted and written anew. An account
    the source owns moves from whoever had it (the checks refused it otherwise)."""
    email = row.record.email
    changed = False
    for platform, user_id in row.record.identities.items():
        existing = stored.identities.get((person_id, platform)) if person_id else None
        if existing is not None and existing[1] == user_id:
            continue
        owner = stored.owners.get((platform, user_id))
        if owner is not None and owner != person_id and platform == policy.owns_platform:
            plan.identity_deletes.append(stored.identities[(owner, platform)][0])
            plan.audit.append(("unlinked", {"person": stored.emails[owner], "platform": platform,
                                            "source": policy.source}))
        if existing is not None:
            plan.identity_deletes.append(existing[0])
        plan.identity_inserts.append((email, platform, user_id))
        plan.audit.append(("linked", {"person": email, "platform": platform,
                                      "replaced_account": existing is not None,
                                      "source": policy.source}))
        changed = True
    return changed


def _plan_grants(row: Checked, person_id: int, stored: Stored, plan: Plan,
                 source: dict[str, str]) -> bool:
    if row.grants is None:
        return False
    current = stored.grants.get(person_id, {})
    gone = sorted(key for key in current if key not in row.grants)
    new = sorted(row.grants - current.keys())
    plan.grant_deletes.extend(current[key] for key in gone)
    plan.grant_inserts.extend((row.record.email, role, scope) for role, scope in new)
    for action, keys in (("role_revoked", gone), ("role_granted", new)):
        plan.audit.extend((action, {"person": row.record.email, "role": r, "scope": s, **source})
                          for r, s in keys)
    return bool(gone or new)


def _plan_deactivations(rows: list[Checked], leavers: list[PersonRecord], stored: Stored,
                        policy: UpsertPolicy, plan: Plan, now: datetime) -> int:
    """Leavers, and with ``deactivate_missing`` everyone active in no record, go inactive."""
    ids: set[int] = set()
    for leaver in leavers:
        person = stored.people.get(leaver.email) if leaver.email else None
        pid = person["id"] if person else next(
            (stored.owners[key] for key in leaver.identities.items() if key in stored.owners),
            None)
        if pid is not None:
            ids.add(pid)
    if policy.deactivate_missing:
        present = {row.record.email for row in rows}
        ids.update(p["id"] for email, p in stored.people.items() if email not in present)
    active = {p["id"] for p in stored.people.values() if p["active"]}
    for pid in sorted(ids & active):
        plan.updates.append({"id": pid, "active": False, "updated_at": now})
        plan.audit.append(("person_deactivated", {"person": stored.emails[pid],
                                                  "source": policy.source}))
    return len(ids & active)


def execute(session: Session, plan: Plan, now: datetime) -> None:
    """Write a plan with a fixed number of statements, however many rows it has."""
    _delete_ids(session, Identity, plan.identity_deletes)
    _delete_ids(session, RoleGrant, plan.grant_deletes)
    if plan.updates:
        session.execute(update(Person), params=plan.updates)
    if plan.inserts:
        session.execute(insert(_table(Person)), params=plan.inserts)
    if not (plan.identity_inserts or plan.grant_inserts or plan.audit):
        return
    ids = {email.lower(): pid for pid, email in session.execute(select(Person.id, Person.email))}
    # The person an event is about is its subject, by id (never the email).
    audit.insert_many(session, [
        audit.Event(now, action, subject_id=ids.get(str(detail["person"]).lower()),
                    detail={k: v for k, v in detail.items() if k != "person"})
        for action, detail in plan.audit])
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
