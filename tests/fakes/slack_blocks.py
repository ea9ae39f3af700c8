"""What Slack checks in Block Kit payloads, for the fake Web API.

Each check returns the problems Slack would name (as ``invalid_blocks`` for a
message, ``invalid_arguments`` for a view); an empty list means Slack accepts it.
Limits: https://docs.slack.dev/reference/block-kit/blocks and block-elements.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
SECTION_TEXT = 3000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
ACTION_ID = 255
BUTTON_VALUE = 2000
BLOCK_ID = 255
VIEW_TITLE = 24
PRIVATE_METADATA = 3000
INPUT_LABEL = 2000
OPTION_TEXT = 75
OPTION_VALUE = 150
SELECT_OPTIONS = 100
MESSAGE_TEXT = 40_000
BLOCK_TYPES = {"section", "header", "context", "actions", "divider", "input", "image",
               "rich_text"}


def _text_object(obj: Any, where: str, limit: int, kinds: tuple[str, ...] = (
        "plain_text", "mrkdwn")) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        return [f"{where}: must be a text object of type {'/'.join(kinds)}"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"{where}: text must be a non-empty string"]
    if len(text) > limit:
        return [f"{where}: must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _element(el: Any, where: str, action_ids: set[str]) -> list[str]:
    if not isinstance(el, dict):
        return [f"{where}: must be an object"]
    problems: list[str] = []
    action_id = el.get("action_id")
    if action_id is not None:
        if not isinstance(action_id, str) or len(action_id) > ACTION_ID:
            problems.append(f"{where}/action_id: must be at most {ACTION_ID} characters")
        elif action_id in action_ids:
            problems.append(f"{where}/action_id: duplicate action_id {action_id!r}")
        action_ids.add(str(action_id))
    kind = el.get("type")
    if kind == "button":
        problems += _text_object(el.get("text"), f"{where}/text", BUTTON_TEXT, ("plain_text",))
        if len(str(el.get("value", ""))) > BUTTON_VALUE:
            problems.append(f"{where}/value: must be at most {BUTTON_VALUE} characters")
        if el.get("style") not in (None, "primary", "danger"):
            problems.append(f"{where}/style: must be primary or danger")
    elif kind in ("static_select", "multi_static_select", "checkboxes", "radio_buttons"):
        groups = el.get("option_groups")
        options = [o for g in groups for o in g.get("options", [])] if groups else el.get(
            "options") or []
        if not options:
            problems.append(f"{where}: needs options")
        if len(options) > SELECT_OPTIONS:
            problems.append(f"{where}: must have at most {SELECT_OPTIONS} options")
        for i, option in enumerate(options):
            problems += _text_object(option.get("text"), f"{where}/options/{i}/text",
                                     OPTION_TEXT if kind.endswith("select") else 150)
            if len(str(option.get("value", ""))) > OPTION_VALUE:
                problems.append(f"{where}/options/{i}/value: at most {OPTION_VALUE} characters")
    elif kind in ("plain_text_input", "datetimepicker", "datepicker", "timepicker",
                  "users_select", "conversations_select"):
        if kind == "plain_text_input" and int(el.get("max_length", 3000)) > 3000:
            problems.append(f"{where}/max_length: must be at most 3000")
    elif kind not in ("image",):
        problems.append(f"{where}: unknown element type {kind!r}")
    return problems


def check_blocks(blocks: Any, limit: int = MESSAGE_BLOCKS) -> list[str]:
    if not isinstance(blocks, list):
        return ["blocks: must be an array"]
    if len(blocks) > limit:
        return [f"blocks: must have no more than {limit} items [json-pointer:/blocks]"]
    problems: list[str] = []
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        action_ids: set[str] = set()  # "unique among all other action_ids in the block"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            problems.append(f"{where}: unknown block type {kind!r}")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in block_ids or len(str(block_id)) > BLOCK_ID:
                problems.append(f"{where}/block_id: duplicate or too long")
            block_ids.add(str(block_id))
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: a section needs text or fields")
            if "text" in block:
                problems += _text_object(block["text"], f"{where}/text", SECTION_TEXT)
            if "accessory" in block:
                problems += _element(block["accessory"], f"{where}/accessory", action_ids)
        elif kind == "header":
            problems += _text_object(block.get("text"), f"{where}/text", HEADER_TEXT,
                                     ("plain_text",))
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= CONTEXT_ELEMENTS:
                problems.append(f"{where}/elements: 1 to {CONTEXT_ELEMENTS} elements")
            for j, el in enumerate(elements):
                if el.get("type") != "image":
                    problems += _text_object(el, f"{where}/elements/{j}", SECTION_TEXT)
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= ACTIONS_ELEMENTS:
                problems.append(f"{where}/elements: 1 to {ACTIONS_ELEMENTS} elements")
            for j, el in enumerate(elements):
                problems += _element(el, f"{where}/elements/{j}", action_ids)
        elif kind == "input":
            problems += _text_object(block.get("label"), f"{where}/label", INPUT_LABEL,
                                     ("plain_text",))
            problems += _element(block.get("element"), f"{where}/element", action_ids)
    return problems


def check_view(view: Any) -> list[str]:
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        return ["view: type must be modal or home"]
    problems = check_blocks(view.get("blocks"), VIEW_BLOCKS)
    if view["type"] == "modal":
        for key in ("title", "submit", "close"):
            if key in view or key == "title":
                problems += _text_object(view.get(key), f"/view/{key}", VIEW_TITLE,
                                         ("plain_text",))
        has_input = any(b.get("type") == "input" for b in view.get("blocks") or [])
        if has_input and "submit" not in view:
            problems.append("/view/submit: a modal with inputs needs a submit button")
    if len(str(view.get("private_metadata", ""))) > PRIVATE_METADATA:
        problems.append(f"/view/private_metadata: at most {PRIVATE_METADATA} characters")
    return problems


def _texts(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str):
            yield node["text"]
            return
        for key, value in node.items():
            if key not in ("action_id", "block_id", "value", "type", "style"):
                yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def visible_text(blocks: Any) -> str:
    """What a person reads in the blocks, entities decoded, one text object per line."""
    return "\n".join(html.unescape(t) for t in _texts(blocks))


def action_ids(blocks: Any) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "action_id" in node and node.get("type") == "button":
                found.append(str(node["action_id"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return found
