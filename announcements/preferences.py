"""Opting out of optional categories.

Rule: a recipient may opt out of polls and reminders; announcements themselves
are not optional (policy updates must reach everyone). An opt-out applies to
sends released after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from announcements import audit
from announcements.domain import Domain
from announcements.errors import CrierError
from announcements.limits import MAX_CATEGORY_CHARS
from announcements.types import Kind, Person, Reply
from storage.models import OptOut

OPTIONAL_CATEGORIES = {"polls": Kind.POLL, "reminders": Kind.REMINDER}


def opted_out(s: Session, category: str) -> set[int]:
    """People who opted out of ``category``."""
    return set(s.execute(select(col(OptOut.person_id))
                         .where(col(OptOut.category) == category)).scalars())


@dataclass(frozen=True)
class Preferences:
    domain: Domain

    def optout(self, actor: Person, category: str, out: bool = True) -> Reply:
        now = self.domain.clock.now()
        cat = category.strip().lower()
        if cat not in OPTIONAL_CATEGORIES or len(cat) > MAX_CATEGORY_CHARS:
            raise CrierError(
                f"`{category}` is not a category you can opt out of",
                f"Optional categories: {', '.join(sorted(OPTIONAL_CATEGORIES))}. "
                "Announcements themselves always reach you.",
            )
        with self.domain.db.session() as s:
            row = s.execute(select(OptOut).where(col(OptOut.person_id) == actor.id,
                                                 col(OptOut.category) == cat)
                            ).scalar_one_or_none()
            if out and row is None:
                s.add(OptOut(person_id=actor.id, category=cat, created_at=now))
            elif not out and row is not None:
                s.delete(row)
            audit.record(s, now, "opted_out" if out else "opted_in", actor_id=actor.id,
                         category=cat)
        verb = "no longer receive" if out else "receive"
        return Reply.text(f"You will {verb} {cat}. (`/crier {'optin' if out else 'optout'} {cat}` "
                          "undoes this.)")
