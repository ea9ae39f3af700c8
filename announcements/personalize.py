"""Personal placeholders in an announcement's text: ``{first_name}``, ``{department}``,
``{location}`` and ``{manager}``.

Rules, each enforced here:
- Only the names in ``PLACEHOLDERS`` are placeholders; any other ``{…}`` (another
  name, ``{0}``, a format spec such as ``{first_name:>10}``, attribute or index access
  such as ``{first_name.__class__}``) is refused at drafting time, naming it.
- ``{{`` and ``}}`` stand for a literal brace.
- Substitution is plain string replacement of the person's own directory values;
  no template engine or ``str.format`` ever sees the text.
- A value the directory does not know reads as a neutral phrase (``FALLBACK``):
  the directory has no manager column yet, so ``{manager}`` reads "your manager".
"""

from __future__ import annotations

import re
from collections.abc import Callable

from announcements.errors import CrierError
from announcements.timespec import shorten
from storage.models import Person as PersonRow

#: Each placeholder and how it is read from the person's directory entry.
PLACEHOLDERS: dict[str, Callable[[PersonRow], str | None]] = {
    "first_name": lambda p: p.name.split()[0] if p.name.strip() else None,
    "department": lambda p: p.department,
    "location": lambda p: p.location,
    "manager": lambda p: None,
}
#: What a placeholder reads as when the directory has no value for the person.
FALLBACK = {"first_name": "colleague", "department": "your department",
            "location": "your location", "manager": "your manager"}
_TOKEN = re.compile(r"\{\{|\}\}|\{[^{}]*\}?|\}")


def check(text: str) -> bool:
    """Refuse any brace that is not an allowed placeholder; True if there is one."""
    personal = False
    for m in _TOKEN.finditer(text):
        token = m.group()
        if token in ("{{", "}}"):
            continue
        name = token[1:-1] if token.endswith("}") and token.startswith("{") else None
        if name is None or name not in PLACEHOLDERS:
            allowed = ", ".join(f"{{{n}}}" for n in PLACEHOLDERS)
            raise CrierError(
                f"`{shorten(token, 40)}` is not a placeholder Crier knows",
                f"Placeholders: {allowed} — exactly as written, nothing inside the braces "
                "besides the name. Write {{ and }} for a literal brace.",
                field="text",
            )
        personal = True
    return personal


def is_personal(text: str) -> bool:
    """Whether the (already checked) text must be filled in for each recipient
    (it has a placeholder or an escaped brace)."""
    return _TOKEN.search(text) is not None


def fill(text: str, person: PersonRow) -> str:
    """The text as ``person`` sees it: each placeholder replaced by their own value."""
    def one(m: re.Match[str]) -> str:
        token = m.group()
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = token[1:-1]
        if name not in PLACEHOLDERS:
            return token  # never stored: drafting refused it
        value = PLACEHOLDERS[name](person)
        return value if value else FALLBACK[name]
    return _TOKEN.sub(one, text)
