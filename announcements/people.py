"""Who is acting: the directory person behind an email or a platform account.

Only active people act; a deactivated person is unknown to Crier.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import col

from announcements.domain import Domain
from announcements.types import Person
from storage.models import Identity as IdentityRow
from storage.models import Person as PersonRow


def to_person(row: PersonRow) -> Person:
    assert row.id is not None
    return Person(
        id=row.id,
        email=row.email,
        name=row.name,
        department=row.department,
        location=row.location,
        timezone=row.timezone,
        title=row.title,
    )


@dataclass(frozen=True)
class People:
    domain: Domain

    def person(self, email: str) -> Person | None:
        with self.domain.db.session() as s:
            row = s.execute(
                select(PersonRow).where(col(PersonRow.email) == email.strip().lower())
            ).scalar_one_or_none()
            return to_person(row) if row and row.active else None

    def person_for(self, platform: str, user_id: str) -> Person | None:
        """The directory person behind a platform account, or None if unknown."""
        if platform in self.domain.config.channels.by_email:
            return self.person(user_id)
        with self.domain.db.session() as s:
            row = s.execute(
                select(PersonRow)
                .join(IdentityRow, col(IdentityRow.person_id) == col(PersonRow.id))
                .where(col(IdentityRow.platform) == platform,
                       col(IdentityRow.platform_user_id) == user_id)
            ).scalar_one_or_none()
            return to_person(row) if row and row.active else None
