"""Message categories: which exist, which are mandatory, and which one a draft gets.

Rules, each enforced here:
- The categories are the ones configured in ``CRIER_CATEGORIES`` (comma-separated,
  a trailing ``!`` marks a mandatory one); ``DEFAULT_CATEGORIES`` otherwise.
- A message or reminder without ``category:`` is ``general``, a poll ``survey``.
- An unknown category is refused with the list of known ones.
- The opt-outs of Crier before categories (``polls``, ``reminders``) were migrated
  (0004): ``polls`` became ``survey``; ``polls`` is still accepted as its old name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from announcements.errors import CrierError
from announcements.limits import MAX_CATEGORY_CHARS
from announcements.types import Kind

DEFAULT_CATEGORIES = "general!,safety!,policy!,security!,social,news,survey"
#: ``CRIER_OPTIONAL_DAILY_CAP`` unless set (enforced in ``announcements.recipients``).
DEFAULT_OPTIONAL_DAILY_CAP = 3
#: The category a draft gets when its author names none.
DEFAULT_FOR_KIND = {Kind.MESSAGE: "general", Kind.REMINDER: "general", Kind.POLL: "survey"}
#: Names typed before categories existed, and the category they mean now.
OLD_NAMES = {"polls": "survey"}
_NAME = re.compile(r"[a-z][a-z0-9_-]*")


@dataclass(frozen=True)
class Category:
    name: str
    mandatory: bool


@dataclass(frozen=True)
class Categories:
    """The configured categories, in the order they were listed."""

    all: tuple[Category, ...]

    @classmethod
    def parse(cls, text: str = DEFAULT_CATEGORIES) -> Categories:
        """Read ``CRIER_CATEGORIES``; raises ValueError saying what is wrong."""
        seen: dict[str, Category] = {}
        for raw in text.split(","):
            word = raw.strip().lower()
            if not word:
                continue
            name = word.removesuffix("!")
            if not _NAME.fullmatch(name) or len(name) > MAX_CATEGORY_CHARS:
                raise ValueError(f"`{raw.strip()}` is not a category name (a-z, 0-9, - and _, "
                                 f"at most {MAX_CATEGORY_CHARS} characters, `!` for mandatory)")
            if name in seen:
                raise ValueError(f"the category `{name}` is listed twice")
            seen[name] = Category(name, word.endswith("!"))
        missing = sorted(set(DEFAULT_FOR_KIND.values()) - set(seen))
        if missing:
            raise ValueError(f"the list lacks {', '.join(missing)} (the default categories "
                             "of announcements and polls)")
        return cls(tuple(seen.values()))

    @property
    def optional(self) -> frozenset[str]:
        return frozenset(c.name for c in self.all if not c.mandatory)

    def describe(self) -> str:
        """``general (mandatory), …, social, news`` — the list shown with a refusal."""
        return ", ".join(f"{c.name} (mandatory)" if c.mandatory else c.name for c in self.all)

    def get(self, name: str) -> Category:
        """The category called ``name`` (or its old name); refuses an unknown one."""
        key = name.strip().lower()
        key = OLD_NAMES.get(key, key)
        for c in self.all:
            if c.name == key:
                return c
        shown = name.strip()[:MAX_CATEGORY_CHARS]
        raise CrierError(f"there is no category `{shown}`",
                         f"Categories: {self.describe()}.", field="category")

    def for_draft(self, name: str | None, kind: Kind) -> Category:
        return self.get(name if name else DEFAULT_FOR_KIND[kind])

    def is_optional(self, name: str | None) -> bool:
        """Whether people may opt out of ``name``; a name no longer configured is not."""
        return name in self.optional
