"""OutboundMessage -> Block Kit.

Text is escaped for Slack's mrkdwn (``&``, ``<``, ``>``), so an announcement can
never ping ``<!channel>`` or forge a link. Long text is split into several
section blocks at paragraph, line or word boundaries; nothing is cut. A message
that would need more blocks than Slack accepts is refused with ``BlockKitLimit``.
"""

from __future__ import annotations

from typing import Any

from announcements.limits import MAX_POLL_OPTION_CHARS, SLACK_MAX_BLOCKS, SLACK_SECTION_CHARS
from announcements.report_view import FULL_REPORT_HINT, ReportView
from announcements.types import Button, OutboundMessage, PollView

Block = dict[str, Any]

# Block Kit limits that only the Slack adapter meets
# (https://docs.slack.dev/reference/block-kit/blocks and .../block-elements).
#: A button's label (Slack cuts longer labels); the domain keeps poll options within it.
BUTTON_LABEL_CHARS = MAX_POLL_OPTION_CHARS
HEADER_CHARS = 150
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
ACTION_ID_CHARS = 255
#: Modals and the App Home take up to 100 blocks.
VIEW_MAX_BLOCKS = 100
#: A notification line; Slack shows about this much in a push notification.
NOTIFICATION_CHARS = 150
#: A section shows at most 10 fields, two to a row.
SECTION_FIELDS = 10


class BlockKitLimit(ValueError):
    """The message cannot be shown within Block Kit's limits without cutting it."""


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """What a person typed, from the escaped text of a slash command."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def split_text(text: str, limit: int = SLACK_SECTION_CHARS) -> list[str]:
    """Split already-escaped ``text`` into pieces of at most ``limit`` characters.

    The pieces joined give back ``text`` exactly. Breaks fall on a blank line,
    else a line end, else a space; a word longer than ``limit`` is broken
    between characters, never inside an ``&amp;``-style entity.
    """
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            at = window.rfind(sep)
            if at > 0:
                cut = at + len(sep)
                break
        if cut <= 0:
            cut = limit
            amp = window.rfind("&", max(0, limit - 5))
            if amp > 0 and ";" not in window[amp:]:
                cut = amp
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces.append(rest)
    return [p for p in pieces if p.strip()]


def sections(text: str) -> list[Block]:
    """Plain text (``*bold*`` allowed) as as many section blocks as it needs."""
    return [{"type": "section", "text": mrkdwn(part)} for part in split_text(escape(text))]


def context(text: str) -> list[Block]:
    parts = split_text(escape(text))
    return [
        {"type": "context", "elements": [mrkdwn(p) for p in parts[i:i + CONTEXT_ELEMENTS]]}
        for i in range(0, len(parts), CONTEXT_ELEMENTS)
    ]


def label(text: str) -> str:
    """A button label within Slack's limit (the only place text may be shortened)."""
    text = " ".join(text.split())
    return text if len(text) <= BUTTON_LABEL_CHARS else text[: BUTTON_LABEL_CHARS - 1] + "…"


def button(action: str, text: str, style: str | None = None, value: str | None = None) -> Block:
    if len(action) > ACTION_ID_CHARS:
        raise BlockKitLimit(f"the button action `{action[:40]}…` is too long for Slack")
    element: Block = {
        "type": "button",
        "text": plain(label(text)),
        "action_id": action,
        "value": value if value is not None else action,
    }
    if style in ("primary", "danger"):
        element["style"] = style
    return element


def actions(buttons: list[Block], block_id: str = "crier_actions") -> list[Block]:
    return [
        {"type": "actions", "block_id": f"{block_id}_{n}",
         "elements": buttons[i:i + ACTIONS_ELEMENTS]}
        for n, i in enumerate(range(0, len(buttons), ACTIONS_ELEMENTS))
    ]


def title_block(title: str, urgent: bool = False) -> Block:
    shown = ("🚨 " if urgent else "") + " ".join(title.split())
    if len(shown) <= HEADER_CHARS:
        return {"type": "header", "text": plain(shown)}
    return {"type": "section", "text": mrkdwn(f"*{escape(shown)}*")}


def poll_blocks(poll: PollView) -> list[Block]:
    """The question, then one line per choice with its count (when shown) and a button."""
    blocks = sections(poll.question)
    total = sum(c.votes or 0 for c in poll.choices)
    for choice in poll.choices:
        line = f"*{escape(choice.label)}*"
        if choice.votes is not None:
            share = round(100 * choice.votes / total) if total else 0
            bar = "█" * round(share / 10) + "░" * (10 - round(share / 10))
            noun = "vote" if choice.votes == 1 else "votes"
            line += f"\n`{bar}` {choice.votes} {noun} ({share}%)"
        block: Block = {"type": "section", "text": mrkdwn(line)}
        if not poll.closed:
            block["accessory"] = button(choice.action, "Choose" if poll.multi else "Vote")
        blocks.append(block)
    return blocks


def report_blocks(view: ReportView) -> list[Block]:
    """A report as a header, its figures as section fields, its rows as mrkdwn lines.

    A report too long for one message keeps its first sections and says where
    the whole report is (the only message Crier shortens: the file has it all).
    """
    blocks: list[Block] = [title_block(view.title), *context(view.period)]
    if view.notice:
        blocks += sections(f"⚠️ {view.notice}")
    for section in view.sections:
        lines = [f"*{escape(section.title)}*"]
        lines += [f"_{escape(note)}_" for note in section.notes]
        lines += [f"*{escape(row.label)}*  {escape(row.text)}" for row in section.rows]
        part: list[Block] = [{"type": "divider"}]
        part += [{"type": "section", "text": mrkdwn(p)} for p in split_text("\n".join(lines))]
        figures = section.figures
        part += [{"type": "section", "fields": [
            mrkdwn(f"*{escape(f.label)}*\n{escape(f.value)}")
            for f in figures[i:i + SECTION_FIELDS]]}
            for i in range(0, len(figures), SECTION_FIELDS)]
        if len(blocks) + len(part) > SLACK_MAX_BLOCKS - 1:
            blocks += context(f"More in the full report: {FULL_REPORT_HINT}.")
            break
        blocks += part
    return blocks


def message_blocks(message: OutboundMessage) -> list[Block]:
    """The blocks of ``message``; raises ``BlockKitLimit`` rather than drop any text."""
    if message.report is not None:
        return report_blocks(message.report)
    blocks: list[Block] = []
    if message.title:
        blocks.append(title_block(message.title, message.urgent))
    if message.poll is not None:
        blocks += poll_blocks(message.poll)
    elif message.text.strip():
        blocks += sections(message.text)
    if message.footer and message.footer.strip():
        blocks += context(message.footer)
    if message.buttons:
        blocks += actions([_button(b) for b in message.buttons])
    if len(blocks) > SLACK_MAX_BLOCKS:
        raise BlockKitLimit(
            f"the message needs {len(blocks)} blocks; Slack shows at most {SLACK_MAX_BLOCKS}"
        )
    return blocks


def _button(b: Button) -> Block:
    return button(b.action, b.label, b.style)


def notification_text(message: OutboundMessage) -> str:
    """The ``text`` Slack shows in notifications: the title and the first line of text.

    ``OutboundMessage.fallback`` is the title when there is one; the text's
    first line is added so a push says what the announcement is about.
    """
    line = message.fallback
    first = next((x.strip() for x in message.text.splitlines() if x.strip()), "")
    if message.poll is not None:
        first = message.poll.question.strip().splitlines()[0] if message.poll.question else ""
    if message.title and first and first not in line:
        line = f"{line}: {first}"
    line = line.replace("*", "")
    if len(line) > NOTIFICATION_CHARS:
        line = line[: NOTIFICATION_CHARS - 1] + "…"
    return escape(line)


def payload(message: OutboundMessage) -> dict[str, Any]:
    """``text`` + ``blocks`` for chat.postMessage, chat.update and response_url."""
    return {"text": notification_text(message), "blocks": message_blocks(message)}
