"""Text as people send it: bytes decoded at the edge, control characters refused.

Every platform hands the pipeline text; what a database or a chat cannot hold
(a NUL byte, other control characters except newline and tab) is refused here,
the same way on every platform and database.
"""

from __future__ import annotations

import unicodedata

from announcements.errors import CrierError

ALLOWED_CONTROLS = frozenset("\n\t")


def decoded(raw: str | bytes) -> str:
    """Bytes (or text read with ``surrogateescape``) as text; invalid UTF-8 becomes �."""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    if any("\udc80" <= ch <= "\udcff" for ch in raw):
        return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return raw.encode("utf-8", "replace").decode("utf-8")


def control_character(text: str) -> str | None:
    """The first control character other than newline and tab, as ``U+0000``; else None."""
    for ch in text.replace("\r\n", "\n"):
        if ch not in ALLOWED_CONTROLS and unicodedata.category(ch) in ("Cc", "Cs"):
            return f"U+{ord(ch):04X}"
    return None


def normalized(text: str) -> str:
    """Windows line ends as newlines (a pasted text); nothing else changes."""
    return text.replace("\r\n", "\n")


def unstorable(text: str, what: str, field: str | None = None) -> CrierError | None:
    """The refusal for ``text`` (called ``what``) when it holds a control character."""
    char = control_character(text)
    if char is None:
        return None
    return CrierError(f"{what} contains a control character ({char}) that Crier cannot store",
                      "Type it again without it (newlines and tabs are fine).", field=field)
