"""A small company for tests, written straight to the tables."""

from __future__ import annotations

from dataclasses import dataclass

from announcements.clock import Clock
from storage.db import Database
from storage.models import Identity, Person, RoleGrant


@dataclass(frozen=True)
class Staff:
    email: str
    name: str
    department: str
    location: str = "Berlin"
    timezone: str = "Europe/Berlin"
    roles: tuple[tuple[str, str], ...] = ()
    active: bool = True


COMMS = Staff("casey.comms@example.com", "Casey Morgan", "People", "London", "Europe/London",
              (("author", "*"),))
APPROVER = Staff("avery.approver@example.com", "Avery Chen", "People", roles=(("approver", "*"),))
ENG_LEAD = Staff("erin.eng@example.com", "Erin Park", "Engineering",
                 roles=(("author", "Engineering"), ("approver", "Engineering")))
ADMIN = Staff("sam.admin@example.com", "Sam Rivera", "Operations", roles=(("admin", "*"),))


def company(engineers: int = 6, sales: int = 4, inactive_engineers: int = 1) -> list[Staff]:
    people = [COMMS, APPROVER, ENG_LEAD, ADMIN]
    people += [Staff(f"eng{i}@example.com", f"Engineer {i}", "Engineering",
                     "Berlin" if i % 2 else "New York",
                     "Europe/Berlin" if i % 2 else "America/New_York")
               for i in range(1, engineers + 1)]
    people += [Staff(f"sales{i}@example.com", f"Seller {i}", "Sales", "London", "Europe/London")
               for i in range(1, sales + 1)]
    people += [Staff(f"gone{i}@example.com", f"Former {i}", "Engineering", active=False)
               for i in range(1, inactive_engineers + 1)]
    return people


def seed(db: Database, clock: Clock, people: list[Staff] | None = None,
         identities: dict[str, dict[str, str]] | None = None) -> dict[str, int]:
    """Insert people (and their roles, and platform identities); return email -> id."""
    now = clock.now()
    ids: dict[str, int] = {}
    with db.session() as s:
        for st in people if people is not None else company():
            row = Person(email=st.email, name=st.name, department=st.department,
                         location=st.location, timezone=st.timezone, active=st.active,
                         created_at=now, updated_at=now)
            s.add(row)
            s.flush()
            assert row.id is not None
            ids[st.email] = row.id
            for role, scope in st.roles:
                s.add(RoleGrant(person_id=row.id, role=role, scope=scope))
        for email, links in (identities or {}).items():
            for platform, user_id in links.items():
                s.add(Identity(person_id=ids[email], platform=platform,
                               platform_user_id=user_id, linked_at=now))
    return ids
