"""``OutboundMessage`` as Adaptive Cards, and the drafting form.

Rules:
- Buttons are ``Action.Execute`` (Universal Actions) with ``verb`` = Crier's
  action id and ``data.action`` = the same, so an ``Action.Submit`` fallback
  carries it too. A Reject button comes with a reason input (``reason``).
- A card's JSON stays under ``CARD_BYTES`` (Teams refuses activities over
  about 28 KB): longer text is split over several cards, never cut; the last
  card carries the buttons.
- Every activity's ``summary`` (what a notification shows instead of "Sent a
  card") is the message's first line of text.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from announcements.types import OutboundMessage, Verb, parse_action

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.4"
#: The largest card JSON Crier sends, leaving room under Teams' ~28 KB activity limit.
CARD_BYTES = 24_000
#: Text per text block when a long text is split.
CHUNK_BYTES = 20_000
SUMMARY_CHARS = 150
ACKNOWLEDGED = "✓ Acknowledged"
REASON = "reason"
BOLD = re.compile(r"\*([^*\n]+)\*")


def summary(message: OutboundMessage) -> str:
    """The notification preview: the first line of the text (a poll: its question)."""
    text = message.poll.question if message.poll is not None else message.text
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip().replace("*", "")[:SUMMARY_CHARS]
    return message.fallback


def _text(text: str, **kw: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": _markdown(text), "wrap": True, **kw}


def _markdown(text: str) -> str:
    """Crier's ``*bold*`` is Adaptive Cards' ``**bold**``."""
    return BOLD.sub(r"**\1**", text)


def card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None
         ) -> dict[str, Any]:
    content: dict[str, Any] = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION,
                               "body": body}
    if actions:
        content["actions"] = actions
    return content


def execute(action: str, label: str, style: str | None = None,
            **data: Any) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "Action.Execute", "title": label, "verb": action,
                              "data": {"action": action, **data}}
    if style in ("positive", "destructive"):
        button["style"] = style
    return button


def _style(style: str | None) -> str | None:
    return {"primary": "positive", "danger": "destructive"}.get(style or "")


def split(text: str, limit: int = CHUNK_BYTES) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes, broken at line ends where
    possible, never losing a character."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line.encode()) > limit:  # one very long line: cut at a character
            head = line.encode()[:limit].decode("utf-8", "ignore")
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
            line = line[len(head):]
        if len((current + line).encode()) > limit:
            pieces.append(current)
            current = ""
        current += line
    if current or not pieces:
        pieces.append(current)
    return pieces


def cards(message: OutboundMessage) -> list[dict[str, Any]]:
    """The cards for ``message``, in order; every one under ``CARD_BYTES``."""
    head: list[dict[str, Any]] = []
    if message.title:
        head.append(_text(message.title, weight="Bolder", size="Medium",
                          color="Attention" if message.urgent else "Default"))
    pieces = split(message.text) if message.poll is None else []
    body: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for i, piece in enumerate(pieces):
        block = _text(piece)
        if i < len(pieces) - 1:
            out.append(card((head if i == 0 else []) + [block]))
        else:
            body = (head if i == 0 else []) + [block]
    if message.poll is not None:
        body = head + [_text(message.poll.question, weight="Bolder")]
    tail, actions = _tail(message)
    body += tail
    out.append(card(body, actions))
    return out


def _tail(message: OutboundMessage) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    body: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    poll = message.poll
    if poll is not None:
        for pos, choice in enumerate(poll.choices, 1):
            votes = f" — {choice.votes}" if choice.votes is not None else ""
            if poll.closed:
                body.append(_text(f"{pos}. {choice.label}{votes}"))
            else:
                actions.append(execute(choice.action, f"{choice.label}{votes}"))
    rejects = False
    for button in message.buttons:
        parsed = parse_action(button.action)
        if parsed is not None and parsed.verb in (Verb.REJECT, Verb.REJECT_EDIT):
            rejects = True
        actions.append(execute(button.action, button.label, _style(button.style)))
    if rejects:
        body.append({"type": "Input.Text", "id": REASON, "isMultiline": True,
                     "placeholder": "Reason (needed to reject)", "maxLength": 500})
    if message.footer:
        body.append(_text(message.footer, isSubtle=True, size="Small"))
    return body, actions


def acknowledged(message: OutboundMessage, action: str) -> OutboundMessage:
    """What a clicked Got it card shows: the message, marked acknowledged."""
    parsed = parse_action(action)
    if parsed is None or parsed.verb != Verb.ACK or message.buttons:
        return message
    if ACKNOWLEDGED.lower() in (message.footer or "").lower():
        return message
    footer = f"{ACKNOWLEDGED} · {message.footer}" if message.footer else ACKNOWLEDGED
    return replace(message, footer=footer)


def refreshed(message: OutboundMessage, action: str, notes: list[str]) -> dict[str, Any]:
    """The card that replaces a clicked one: the updated message (a Got it card marked
    acknowledged) with what the click did as its last lines."""
    content = cards(acknowledged(message, action))[-1]
    extra = [_text(note, weight="Bolder", color="Good" if note.startswith("✓") else "Default")
             for note in notes if note]
    grown = {**content, "body": [*content["body"], *extra]}
    return grown if size(grown) <= CARD_BYTES else content


def activity(content: dict[str, Any], message: OutboundMessage) -> dict[str, Any]:
    """A message activity holding one card."""
    return {"type": "message", "summary": summary(message),
            "attachments": [{"contentType": CARD_TYPE, "content": content}]}


def activities(message: OutboundMessage) -> list[dict[str, Any]]:
    return [activity(c, message) for c in cards(message)]


def size(content: dict[str, Any]) -> int:
    return len(json.dumps(content, ensure_ascii=False).encode())
