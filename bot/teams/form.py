"""The drafting form card (a bare ``announce``), and reading its submission.

The form's fields are checked here only for what the card itself cannot say
(nothing typed); everything else goes through the same draft validation as a
typed command (the domain's refusal lands under the field it names).
"""

from __future__ import annotations

from typing import Any

from announcements.categories import Categories
from announcements.errors import CrierError
from announcements.limits import MAX_CATEGORY_CHARS
from announcements.timespec import When, parse_when
from announcements.types import DraftRequest, Kind, Refusal
from bot.teams import cards

#: The Action.Execute verb of the form's Preview button.
DRAFT = "draft"
FIELDS = ("audience", "text", "schedule")
#: ``Refusal.field`` (a ``DraftRequest`` field) -> the card input it concerns.
FIELD_INPUTS = {"text": "text", "audience": "audience", "at": "schedule", "options": "text",
                "category": "category"}
WHEN_HINT = "e.g. tomorrow 9am, mon 09:00, 2026-12-01 09:00 or in 2h; empty: send now"


def draft_card(values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
               categories: Categories | None = None) -> dict[str, Any]:
    values, errors = values or {}, errors or {}
    categories = categories or Categories.parse()
    general = categories.for_draft(None, Kind.MESSAGE).name

    def field(name: str, label: str, **kw: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"type": "Input.Text", "id": name, "label": label,
                                      "value": str(values.get(name) or ""), **kw}]
        if name in errors:
            out.append({"type": "TextBlock", "text": errors[name], "color": "Attention",
                        "wrap": True, "size": "Small"})
        return out

    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": "New announcement", "weight": "Bolder", "size": "Medium"},
        *field("audience", "Who gets it", placeholder="Engineering,Sales · loc:Berlin · all",
               isRequired=True, errorMessage="Say who gets it"),
        *field("text", "Announcement", isMultiline=True, isRequired=True,
               errorMessage="Write the announcement"),
        {"type": "Input.Toggle", "id": "ack", "title": "Ask people to confirm with Got it",
         "value": "true" if _true(values.get("ack")) else "false"},
        {"type": "Input.Toggle", "id": "urgent", "title": "Urgent (also outside working hours)",
         "value": "true" if _true(values.get("urgent")) else "false"},
        {"type": "Input.ChoiceSet", "id": "category", "label": "Category",
         "value": str(values.get("category") or general),
         "choices": [{"title": f"{c.name} (mandatory)" if c.mandatory else c.name,
                      "value": c.name} for c in categories.all]},
        *([{"type": "TextBlock", "text": errors["category"], "color": "Attention",
            "wrap": True, "size": "Small"}] if "category" in errors else []),
        *field("schedule", "When (optional)", placeholder=WHEN_HINT),
    ]
    if "form" in errors:
        body.append({"type": "TextBlock", "text": errors["form"], "color": "Attention",
                     "wrap": True})
    return cards.card(body, [cards.execute(DRAFT, "Preview", "primary")])


def _true(value: Any) -> bool:
    return str(value).lower() == "true"


def parse(data: dict[str, Any]) -> tuple[DraftRequest | None, dict[str, str]]:
    """The form's answers as a ``DraftRequest``, or the errors to show under the fields."""
    errors: dict[str, str] = {}
    text = str(data.get("text") or "").strip()
    audience = str(data.get("audience") or "").strip()
    if not text:
        errors["text"] = "Write the announcement people will read."
    if not audience:
        errors["audience"] = "Say who gets it: all, a department, loc:City or @email."
    at: When | None = None
    schedule = str(data.get("schedule") or "").strip()
    if schedule:
        try:
            at = parse_when(schedule)
            if at is None:
                errors["schedule"] = f"“{schedule}” is not a time: {WHEN_HINT}."
        except CrierError as exc:
            errors["schedule"] = exc.message
    if errors:
        return None, errors
    category = str(data.get("category") or "").strip()[:MAX_CATEGORY_CHARS + 1] or None
    return DraftRequest(Kind.MESSAGE, text, audience=audience, at=at, category=category,
                        ack=_true(data.get("ack")), urgent=_true(data.get("urgent"))), {}


def refused(refusal: Refusal) -> dict[str, str]:
    """A refusal of the form's draft, under the input it concerns."""
    return {FIELD_INPUTS.get(refusal.field or "", "form"): refusal.words}
