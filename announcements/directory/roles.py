"""Roles: who may author, approve and administer, over which scope.

Rules, each enforced once here:
- A scope is ``*`` (everyone), a department or ``loc:City`` that someone in
  the directory has; any other name is refused with the closest ones.
- Granting what a person already has changes nothing; every grant and revoke
  is audited and moves the person's ``updated_at``.
- The directory always keeps an active admin once it has one
  (``keep_an_admin``): no revoke, import or sync may remove the last one.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from announcements import audit
from announcements.clock import Clock, SystemClock
from announcements.directory.places import did_you_mean, stored_places
from announcements.errors import CrierError
from announcements.types import Role
from storage.db import Database
from storage.models import Person, RoleGrant

ANY_SCOPE = "*"
LOCATION_PREFIX = "loc:"
SCOPE_FORMS = "A scope is `*` (everyone), a department name, or `loc:City`."
#: How many existing names an error lists when none is close to what was typed.
LISTED_NAMES = 8
#: ``crier roles list`` shows admins first, then approvers, then authors.
ROLE_ORDER = {Role.ADMIN.value: 0, Role.APPROVER.value: 1, Role.AUTHOR.value: 2}


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


def _unknown(kind: str, name: str, known: Mapping[str, str]) -> CrierError:
    guess = did_you_mean(name, known)
    if not guess and known:
        names = sorted(known.values())
        more = ", …" if len(names) > LISTED_NAMES else ""
        guess = f"; the {kind}s are {', '.join(names[:LISTED_NAMES])}{more}"
    return CrierError(f'there is no {kind} "{name}"{guess}', SCOPE_FORMS)


def resolve_scope(
    raw: str, departments: Mapping[str, str], locations: Mapping[str, str]
) -> str:
    """``*``, or a department or ``loc:City`` someone has, in any case.

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
        if city.lower() not in locations:
            raise _unknown("location", city, locations)
        return LOCATION_PREFIX + locations[city.lower()]
    if not text:
        raise CrierError("the scope is empty", SCOPE_FORMS)
    if text.lower() not in departments:
        raise _unknown("department", text, departments)
    return departments[text.lower()]


def parse_grants(
    items: tuple[str, ...], departments: Mapping[str, str], locations: Mapping[str, str],
    problems: list[str],
) -> set[tuple[str, str]]:
    """``("author:Engineering", "admin")`` -> {(role, scope)}; no scope means ``*``."""
    grants: set[tuple[str, str]] = set()
    for item in items:
        name, has_scope, raw_scope = item.partition(":")
        try:
            role = parse_role(name)
            scope = resolve_scope(raw_scope if has_scope else ANY_SCOPE, departments, locations)
        except CrierError as exc:
            problems.append(f'roles "{item}": {exc.message}')
            continue
        grants.add((role.value, scope))
    return grants


def describe_grant(role: str, scope: str) -> str:
    """``author over Engineering``, ``approver over everyone``, ``admin``."""
    if scope == ANY_SCOPE:
        return role if role == Role.ADMIN.value else f"{role} over everyone"
    return f"{role} over {scope}"


def who(person: Person) -> str:
    return f"{person.name} <{person.email}>"


# --------------------------------------------------------------------------- the last admin


def active_admins(session: Session) -> dict[int, str]:
    """Person id -> ``Name <email>`` of every active person holding admin."""
    query = (
        select(Person.id, Person.name, Person.email)
        .join(RoleGrant, col(RoleGrant.person_id) == col(Person.id))
        .where(col(RoleGrant.role) == Role.ADMIN.value, col(Person.active).is_(True))
        .distinct()
    )
    return {int(pid or 0): f"{name} <{email}>" for pid, name, email in session.exec(query)}


def keep_an_admin(session: Session, before: Mapping[int, str], change: str) -> None:
    """Refuse a change (``change`` says what it was) that left no active admin.

    Call it after the change is flushed, inside its transaction: the refusal
    rolls all of it back. ``before`` is ``active_admins`` taken before the change.
    """
    if not before or active_admins(session):
        return
    lost = sorted(before.values())
    still = _still_active(session, list(before))
    what = "deactivate" if not still else "take the admin role from"
    noun = "the last admin" if len(lost) == 1 else "the last admins"
    raise CrierError(
        f"{change} would {what} {' and '.join(lost)}, {noun}",
        "Grant admin to someone who stays first (`crier roles grant EMAIL admin`), "
        "then try again.",
    )


def _still_active(session: Session, ids: list[int]) -> set[int]:
    rows = session.exec(select(Person.id).where(col(Person.id).in_(ids),
                                                col(Person.active).is_(True))).all()
    return {int(pid or 0) for pid in rows}


# --------------------------------------------------------------------------- commands


def grant_role(
    db: Database, email: str, role: str, scope: str = ANY_SCOPE, clock: Clock | None = None,
    actor_id: int | None = None,
) -> str:
    """Give a person a role over a scope. Granting what they already have changes nothing."""
    the_role = parse_role(role)
    with db.session() as session:
        person = find_person(session, email)
        the_scope = resolve_scope(scope, *stored_places(session))
        what = describe_grant(the_role.value, the_scope)
        if _find_grant(session, person, the_role.value, the_scope) is not None:
            return f"{who(person)} already has {what}; nothing changed."
        assert person.id is not None
        session.add(RoleGrant(person_id=person.id, role=the_role.value, scope=the_scope))
        _touch(session, person, clock)
        audit.record(session, (clock or SystemClock()).now(), "role_granted",
                     actor_id=actor_id, subject_id=person.id, role=the_role.value,
                     scope=the_scope)
        return f"Granted {what} to {who(person)}."


def revoke_role(
    db: Database, email: str, role: str, scope: str = ANY_SCOPE, clock: Clock | None = None,
    actor_id: int | None = None,
) -> str:
    """Take a role over a scope away. A scope is matched in any case, even for a
    department that no longer exists."""
    the_role = parse_role(role)
    with db.session() as session:
        person = find_person(session, email)
        the_scope = _spelled_scope(session, scope)
        grant = _find_grant(session, person, the_role.value, the_scope)
        if grant is None:
            held = _held(session, person)
            return (
                f"{who(person)} does not have {describe_grant(the_role.value, the_scope)}; "
                f"nothing to revoke. Their roles: {held}."
            )
        what = describe_grant(grant.role, grant.scope)
        admins = active_admins(session)
        session.delete(grant)
        session.flush()
        keep_an_admin(session, admins, "this revoke")
        _touch(session, person, clock)
        audit.record(session, (clock or SystemClock()).now(), "role_revoked",
                     actor_id=actor_id, subject_id=person.id, role=grant.role,
                     scope=grant.scope)
        return f"Revoked {what} from {who(person)}."


@dataclass(frozen=True)
class Holder:
    """One grant as ``crier roles list`` shows it."""

    name: str
    email: str
    role: str
    scope: str
    active: bool

    @property
    def scope_text(self) -> str:
        return "everyone" if self.scope == ANY_SCOPE else self.scope


def list_roles(db: Database) -> list[Holder]:
    """Every grant: admins first, then approvers, then authors; by scope, then name."""
    with db.session() as session:
        query = sa_select(col(Person.name), col(Person.email), col(RoleGrant.role),
                          col(RoleGrant.scope), col(Person.active))
        query = query.select_from(RoleGrant).join(Person,
                                                  col(Person.id) == col(RoleGrant.person_id))
        holders = [Holder(*row) for row in session.execute(query).tuples().all()]
    return sorted(holders, key=lambda h: (ROLE_ORDER.get(h.role, 9), h.scope.lower(),
                                          h.name.lower(), h.email))


def _spelled_scope(session: Session, scope: str) -> str:
    """A scope as stored when it names a place that exists, else as written."""
    try:
        return resolve_scope(scope.strip() or ANY_SCOPE, *stored_places(session))
    except CrierError:
        return scope.strip()


def find_person(session: Session, email: str) -> Person:
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


def _touch(session: Session, person: Person, clock: Clock | None) -> None:
    """A change of roles is a change of the person: it moves ``updated_at``."""
    person.updated_at = (clock or SystemClock()).now()
    session.add(person)
