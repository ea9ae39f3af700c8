"""Slack modals: the /announce drafting form, the rejection reason, and notices.

A form is checked field by field before the domain sees it; a missing field
comes back to Slack as ``response_action: errors`` so it is shown under the
field, as Slack shows its own errors.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from announcements.categories import Categories
from announcements.errors import CrierError
from announcements.limits import MAX_CATEGORY_CHARS, MAX_REASON_CHARS
from announcements.timespec import Every, When, parse_duration, parse_every, parse_when, zone
from announcements.types import DraftRequest, Kind, OutboundMessage, Refusal
from bot.slack.blocks import escape, message_blocks, mrkdwn, plain

DRAFT_CALLBACK = "crier_draft"
REJECT_CALLBACK = "crier_reject"
#: Slack limits for view fields (https://docs.slack.dev/reference/views).
VIEW_TITLE_CHARS = 24
INPUT_CHARS = 3000  # a plain_text_input holds at most 3,000 characters
OPTION_TEXT_CHARS = 75
OPTION_VALUE_CHARS = 150
SELECT_OPTIONS = 100
METADATA_CHARS = 3000
TITLE_CHARS = 150

#: The form's block for each ``DraftRequest`` field a refusal may name.
FIELD_BLOCKS = {"text": "message", "audience": "audience", "at": "schedule",
                "nudge": "nudge", "ack": "options", "urgent": "options",
                "category": "category", "escalate": "escalate"}
PICK_A_TIME = "Pick a date and time with the picker."

NUDGES = (("24h", "Every day"), ("2d", "Every 2 days"), ("3d", "Every 3 days"),
          ("7d", "Every week"))
ESCALATIONS = (("15m", "After 15 minutes"), ("30m", "After 30 minutes"),
               ("1h", "After 1 hour"), ("4h", "After 4 hours"), ("1d", "After 1 day"))
ACK_LABEL = "Ask recipients to confirm with *Got it*"
ESCALATE_NEEDS = ("Escalation is for urgent announcements that ask for a confirmation, so "
                  "also tick “Ask recipients to confirm” and “Urgent”.")


def metadata(data: dict[str, Any]) -> str:
    text = json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":"))
    return text if len(text) <= METADATA_CHARS else "{}"


def read_metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text[:OPTION_TEXT_CHARS]), "value": value}


def audience_options(departments: list[str], locations: list[str]) -> list[dict[str, Any]]:
    """Option groups for the audience picker: everyone, departments, locations."""
    budget = SELECT_OPTIONS - 1
    groups = [{"label": plain("Everyone"), "options": [_option("Everyone", "all")]}]
    for title, names, prefix in (("Departments", departments, ""), ("Locations", locations,
                                                                     "loc:")):
        usable = [n for n in names if "," not in n and len(prefix + n) <= OPTION_VALUE_CHARS]
        options = [_option(n, prefix + n) for n in usable[:budget]]
        budget -= len(options)
        if options:
            groups.append({"label": plain(title), "options": options})
    return groups


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool = False,
           hint: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "input", "block_id": block_id, "label": plain(label),
                             "element": {**element, "action_id": "value"}, "optional": optional}
    if hint:
        block["hint"] = plain(hint)
    return block


def draft_view(departments: list[str], locations: list[str],
               meta: dict[str, Any], categories: Categories) -> dict[str, Any]:
    """The drafting form ``/announce`` opens."""
    nudges = [_option(text, value) for value, text in NUDGES]
    kinds = [_option(f"{c.name} (mandatory)" if c.mandatory else c.name, c.name)
             for c in categories.all][:SELECT_OPTIONS]
    general = categories.for_draft(None, Kind.MESSAGE).name
    blocks = [
        _input("title", "Title", {"type": "plain_text_input", "max_length": TITLE_CHARS,
                                  "placeholder": plain("New on-call policy")}, optional=True),
        _input("message", "Message", {"type": "plain_text_input", "multiline": True,
                                      "max_length": INPUT_CHARS},
               hint="Slack formatting works: *bold*, _italic_, ~strike~, `code`, links. "
                    "Longer texts: type /announce followed by the text."),
        _input("audience", "Audience", {"type": "multi_static_select",
                                        "placeholder": plain("Departments or locations"),
                                        "option_groups": audience_options(departments, locations)},
               optional=True),
        _input("audience_text", "…or type an audience", {"type": "plain_text_input"},
               optional=True, hint="e.g. Engineering,Sales · loc:Berlin · @ana@example.com · "
                                   "-Contractors excludes"),
        _input("category", "Category", {
            "type": "static_select", "options": kinds,
            "initial_option": next(o for o in kinds if o["value"] == general)}, optional=True,
            hint="People may opt out of the optional categories; mandatory ones reach "
                 "everyone."),
        _input("schedule", "Send at", {"type": "datetimepicker"}, optional=True,
               hint="Leave empty to send as soon as it is approved."),
        _input("options", "Options", {"type": "checkboxes", "options": [
            {"text": mrkdwn(ACK_LABEL), "value": "ack"},
            {"text": mrkdwn("*Urgent*: marked as urgent for everyone"), "value": "urgent"},
        ]}, optional=True),
        _input("nudge", "Remind people who have not confirmed",
               {"type": "static_select", "placeholder": plain("Don't remind"),
                "options": nudges}, optional=True),
        _input("escalate", "Escalate to their other platform",
               {"type": "static_select", "placeholder": plain("Don't escalate"),
                "options": [_option(text, value) for value, text in ESCALATIONS]},
               optional=True,
               hint="Urgent and confirmed only: people who have not confirmed by then also "
                    "get it on their next linked platform (e.g. Telegram)."),
    ]
    return {
        "type": "modal",
        "callback_id": DRAFT_CALLBACK,
        "title": plain("New announcement"),
        "submit": plain("Preview"),
        "close": plain("Cancel"),
        "private_metadata": metadata(meta),
        "blocks": blocks,
    }


def _value(values: dict[str, Any], block_id: str) -> dict[str, Any]:
    return (values.get(block_id) or {}).get("value") or {}


def _text(values: dict[str, Any], block_id: str) -> str:
    return str(_value(values, block_id).get("value") or "").strip()


def _selected(values: dict[str, Any], block_id: str) -> list[str]:
    return [str(o.get("value")) for o in _value(values, block_id).get("selected_options") or []]


def _picked(values: dict[str, Any], block_id: str) -> str:
    """The value of a ``static_select``'s chosen option, or ``""``."""
    return str((_value(values, block_id).get("selected_option") or {}).get("value") or "")


def parse_draft(view: dict[str, Any], timezone: str) -> tuple[DraftRequest | None, dict[str, str]]:
    """The form's answers as a ``DraftRequest``, or the errors to show under the fields."""
    values = (view.get("state") or {}).get("values") or {}
    errors: dict[str, str] = {}
    title = _text(values, "title")
    message = _text(values, "message")
    if not message:
        errors["message"] = "Write the announcement people will read."
    picked = _selected(values, "audience")
    typed = _text(values, "audience_text")
    audience = ",".join(picked + ([typed] if typed else []))
    if not audience:
        errors["audience"] = "Choose who gets it, or type an audience below."
    flags = set(_selected(values, "options"))
    nudge_raw = _picked(values, "nudge")
    nudge: Every | None = None
    try:
        nudge = parse_every(nudge_raw) if nudge_raw else None
    except CrierError as exc:
        errors["nudge"] = exc.message
    if nudge is not None and "ack" not in flags:
        errors["nudge"] = ("Reminders go to people who have not confirmed, so also tick "
                           "“Ask recipients to confirm”.")
    escalate_raw = _picked(values, "escalate")
    escalate = parse_duration(escalate_raw) if escalate_raw else None
    if escalate_raw and escalate is None:
        errors["escalate"] = "Pick one of the times in the list."
    elif escalate is not None and not {"ack", "urgent"} <= flags:
        errors["escalate"] = ESCALATE_NEEDS
    at: When | None = None
    try:
        at = _picked_time(_value(values, "schedule").get("selected_date_time"), timezone)
    except (CrierError, TypeError, ValueError, OverflowError, OSError):
        errors["schedule"] = PICK_A_TIME
    category = _picked(values, "category")
    if errors:
        return None, errors
    text = f"*{title}*\n{message}" if title else message
    return DraftRequest(Kind.MESSAGE, text, audience=audience, at=at, nudge=nudge,
                        ack="ack" in flags, urgent="urgent" in flags, escalate=escalate,
                        category=category[:MAX_CATEGORY_CHARS + 1] or None), {}


def _picked_time(stamp: Any, timezone: str) -> When | None:
    """The datetimepicker's Unix time as a time phrase in the author's zone; raises for a
    value the picker never sends (not an integer, or outside years 1..9999)."""
    if stamp is None or stamp == "":
        return None
    if isinstance(stamp, bool) or not isinstance(stamp, int | str):
        raise TypeError("not a Unix time")
    local = datetime.fromtimestamp(int(stamp), UTC).astimezone(zone(timezone))
    return parse_when(local.strftime("%Y-%m-%d %H:%M"))


def field_errors(refusal: Refusal) -> dict[str, str]:
    """A refusal of the drafting form, under the field it concerns (else the message)."""
    return {FIELD_BLOCKS.get(refusal.field or "", "message"): refusal.words}


def reject_view(announcement: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "title": plain("Reject"),
        "submit": plain("Reject"),
        "close": plain("Back"),
        "private_metadata": metadata(meta),
        "blocks": [
            {"type": "section", "text": mrkdwn(
                f"You are rejecting *{escape(announcement)}*. The author will see your reason.")},
            _input("reason", "Reason", {"type": "plain_text_input", "multiline": True,
                                        "max_length": MAX_REASON_CHARS,
                                        "placeholder": plain("What should the author change?")}),
        ],
    }


def parse_reason(view: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    values = (view.get("state") or {}).get("values") or {}
    reason = _text(values, "reason")
    if not reason:
        return None, {"reason": "Say why, so the author knows what to change."}
    if len(reason) > MAX_REASON_CHARS:
        return None, {"reason": f"Keep it under {MAX_REASON_CHARS} characters."}
    return reason, {}


def notice_view(message: OutboundMessage) -> dict[str, Any]:
    """A small modal with a reply, for clicks in the App Home (which has no thread to answer in)."""
    return {"type": "modal", "title": plain("Crier"), "close": plain("OK"),
            "blocks": message_blocks(message)}
