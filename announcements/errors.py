"""Errors meant for a person: what was wrong, and what to type instead."""

from __future__ import annotations


class CrierError(Exception):
    """A refusal the user should read. ``hint`` says what to do instead."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class NotAllowed(CrierError):
    """The person's roles do not permit the action."""


class NotFound(CrierError):
    """The person, announcement or option does not exist (or is not theirs to see)."""
