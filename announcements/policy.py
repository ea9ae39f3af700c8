"""Who may do what. Roles are ``author``, ``approver`` and ``admin``; a grant has
a scope: ``*``, a department name, or ``loc:City``.

Rules, each enforced here and nowhere else:
- An author may draft for an audience only if their author scopes cover every
  person in it.
- An approver may approve only if their approver scopes cover every person in
  the audience, and never an announcement they wrote.
- An admin may do everything an author or approver may, for any audience, but
  still never approves their own announcement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from announcements.audience import Member
from announcements.types import Role
from storage.models import RoleGrant


@dataclass(frozen=True)
class Grants:
    person_id: int
    pairs: frozenset[tuple[str, str]]  # (role, scope)

    @property
    def is_admin(self) -> bool:
        return any(role == Role.ADMIN for role, _ in self.pairs)

    def scopes(self, role: Role) -> set[str]:
        return {scope.lower() for r, scope in self.pairs if r == role}

    def has(self, role: Role) -> bool:
        return self.is_admin or bool(self.scopes(role))

    def describe(self) -> list[str]:
        return sorted(f"{role}:{scope}" for role, scope in self.pairs)


def grants_of(session: Session, person_id: int) -> Grants:
    query = select(RoleGrant).where(RoleGrant.person_id == person_id)
    rows = session.execute(query).scalars().all()
    return Grants(person_id, frozenset((r.role, r.scope) for r in rows))


def covers(scopes: set[str], member: Member) -> bool:
    """A scope set covers a person when it is ``*``, their department or their ``loc:``."""
    if "*" in scopes:
        return True
    if member.department.lower() in scopes:
        return True
    return bool(member.location and f"loc:{member.location.lower()}" in scopes)


def uncovered(grants: Grants, role: Role, members: Iterable[Member]) -> list[Member]:
    """The people a role of this person does not reach (admins reach everyone)."""
    if grants.is_admin:
        return []
    scopes = grants.scopes(role)
    return [m for m in members if not covers(scopes, m)]


def may_author(grants: Grants, members: Iterable[Member]) -> bool:
    return grants.has(Role.AUTHOR) and not uncovered(grants, Role.AUTHOR, members)


def may_approve(grants: Grants, members: Iterable[Member], author_id: int) -> bool:
    """Scope covers the whole audience, and the approver is not the author."""
    if grants.person_id == author_id:
        return False
    return grants.has(Role.APPROVER) and not uncovered(grants, Role.APPROVER, members)


def approvers_for(session: Session, members: list[Member], author_id: int) -> list[int]:
    """Everyone who may approve an announcement to ``members`` by ``author_id``."""
    rows = session.execute(
        select(RoleGrant).where(
            col(RoleGrant.role).in_([Role.APPROVER.value, Role.ADMIN.value])
        )
    ).scalars().all()
    by_person: dict[int, set[tuple[str, str]]] = {}
    for r in rows:
        by_person.setdefault(r.person_id, set()).add((r.role, r.scope))
    return sorted(
        pid
        for pid, pairs in by_person.items()
        if may_approve(Grants(pid, frozenset(pairs)), members, author_id)
    )


def scope_refusal(grants: Grants, role: Role, members: Iterable[Member]) -> tuple[str, str]:
    """What to tell someone whose ``role`` does not cover the whole audience."""
    outside: Counter[str] = Counter()
    for m in uncovered(grants, role, members):
        outside[m.department] += m.count
    shown = ", ".join(f"{d} ({n})" for d, n in outside.most_common(4))
    scopes = ", ".join(sorted(grants.scopes(role))) or "nothing"
    return (
        f"your {role} role covers {scopes}, but this audience also reaches {shown}",
        "Narrow `to:` to your scope, or ask an admin to widen your role.",
    )
