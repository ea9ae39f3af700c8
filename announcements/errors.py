"""Errors meant for a person: what was wrong, and what to type instead.

Each refusal carries a ``code`` (what kind of refusal), the form ``field`` it
concerns where there is one, and a ``hint``; adapters read these, never the text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class CrierError(Exception):
    """A refusal the user should read. ``hint`` says what to do instead."""

    code = "refused"

    def __init__(self, message: str, hint: str | None = None, *,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        #: The ``DraftRequest`` field the refusal is about ("audience", "at", ...), if any.
        self.field = field

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class NotAllowed(CrierError):
    """The person's roles do not permit the action."""

    code = "not_allowed"


class NotFound(CrierError):
    """The person, announcement or option does not exist (or is not theirs to see)."""

    code = "not_found"


@contextmanager
def concerning(field: str) -> Iterator[None]:
    """A refusal raised inside is about ``field`` (unless it already names one)."""
    try:
        yield
    except CrierError as exc:
        if exc.field is None:
            exc.field = field
        raise
