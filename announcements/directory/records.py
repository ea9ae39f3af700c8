"""What every directory source hands the directory: neutral person records.

A CSV line, a Slack member and (later) a Microsoft Graph user all become a
``PersonRecord``; ``upsert.apply`` makes the directory agree with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from announcements.errors import CrierError
from storage.models import Person

DEFAULT_TIMEZONE = "UTC"
#: Columns stored on the person row itself, besides the email and the active flag.
PERSON_COLUMNS = ("name", "department", "location", "title", "timezone")
#: Length limits of the person columns, read from the table so they are stated once.
MAX_LENGTHS: dict[str, int] = {
    name: Person.__table__.c[name].type.length  # type: ignore[attr-defined]
    for name in (*PERSON_COLUMNS, "email")
}
#: An error message lists at most this many problems; ``problems`` holds them all.
MAX_SHOWN_PROBLEMS = 50


@dataclass(frozen=True)
class PersonRecord:
    """One person as a source describes them.

    A field that is None is one the source does not know: the stored value
    stays. An empty ``location`` or ``title`` clears the stored one.
    ``identities`` maps a platform (``slack``, ``telegram``, ``teams``) to the
    person's user id there. ``roles`` holds grants written ``role:scope``
    (``author:Engineering``, ``admin``); None leaves the person's roles alone,
    an empty tuple removes them. An inactive record marks a leaver: it only
    deactivates, found by email or else by one of its identities.
    """

    email: str
    name: str | None = None
    department: str | None = None
    location: str | None = None
    title: str | None = None
    timezone: str | None = None
    identities: Mapping[str, str] = field(default_factory=dict)
    active: bool = True
    roles: tuple[str, ...] | None = None
    #: Where the record came from, for messages: ``line 12``, ``Slack user U123``.
    origin: str = ""
    #: Orders problems as the source does (the line number of a file).
    position: int = 0

    def given(self) -> dict[str, str | None]:
        """The person columns this record states (None means it does not)."""
        values = {name: getattr(self, name) for name in PERSON_COLUMNS}
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class UpsertPolicy:
    """How far a source is trusted; each flag is one rule of ``upsert.apply``."""

    #: Written to the audit log with every change (``csv``, ``slack``, ``teams``).
    source: str
    #: The department of a new person whose record names none; None: they need one.
    default_department: str | None = None
    #: The source is the platform itself: an account it names moves to that person
    #: (an email changed). From any other source, an account of someone else is refused.
    owns_platform: str | None = None
    #: Active people who are in no record are deactivated (a full re-import).
    deactivate_missing: bool = False
    #: A department or location spelled close to an existing one is intended.
    new_departments: bool = False
    new_locations: bool = False


@dataclass(frozen=True)
class ImportResult:
    """What an import or sync changed."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    linked: int = 0
    #: Things a person should know that did not stop the import (ignored columns).
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged

    def summary(self) -> str:
        noun = "person" if self.total == 1 else "people"
        text = (
            f"{self.total} {noun}: {self.created} added, {self.updated} updated, "
            f"{self.unchanged} unchanged"
        )
        if self.deactivated:
            text += f"; {self.deactivated} deactivated (missing from the file)"
        return "\n".join([text, *self.notes])


class DirectoryImportError(CrierError):
    """A directory import or sync was refused; ``problems`` lists every one, in order."""

    def __init__(self, problems: list[str], hint: str | None = None,
                 what: str = "the directory file") -> None:
        self.problems = list(problems)
        count = len(self.problems)
        shown = [f"  {p}" for p in self.problems[:MAX_SHOWN_PROBLEMS]]
        if count > MAX_SHOWN_PROBLEMS:
            shown.append(f"  ... and {count - MAX_SHOWN_PROBLEMS} more")
        noun = "problem" if count == 1 else "problems"
        message = f"{what} has {count} {noun}; nothing was imported:\n"
        super().__init__(
            message + "\n".join(shown), hint or "Fix these lines and import the file again."
        )
