"""OutboundMessage -> Telegram HTML chunks and an inline keyboard.

Rules:
- Every character of the domain's text is escaped (``<``, ``>``, ``&``); only
  Crier's own tags (``<b>`` for titles and ``*bold*``, ``<i>`` for footers)
  reach Telegram as markup.
- A message longer than Telegram's 4,096 characters is split at paragraph
  boundaries (then lines, then words); the keyboard goes on the last chunk.
  Length is counted in UTF-16 code units, as Telegram counts it.
- A button's ``callback_data`` is its action (``ack:12``), at most 64 bytes.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from announcements.limits import TELEGRAM_CALLBACK_BYTES, TELEGRAM_MESSAGE_CHARS
from announcements.report_view import ReportView
from announcements.types import Button, OutboundMessage

#: Telegram's caption limit for sendPhoto.
CAPTION_CHARS = 1024
#: Telegram's limit for the text of an answered callback query (a toast).
TOAST_CHARS = 200
ACKNOWLEDGED = "✓ Acknowledged"
_BOLD = re.compile(r"\*([^*\n]+)\*")


@dataclass(frozen=True)
class Rendered:
    chunks: tuple[str, ...]  # HTML, each within the limit
    markup: InlineKeyboardMarkup | None


@dataclass(frozen=True)
class _Block:
    plain: str  # what the user sees (its length is what Telegram limits)
    kind: str  # "title" | "text" | "footer"


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def _markup_text(plain: str) -> str:
    """Escape, then turn the domain's ``*bold*`` into ``<b>``."""
    return _BOLD.sub(lambda m: f"<b>{m.group(1)}</b>", escape(plain))


def _to_html(block: _Block) -> str:
    if block.kind == "title":
        return f"<b>{escape(block.plain)}</b>"
    if block.kind == "footer":
        return f"<i>{escape(block.plain)}</i>"
    return _markup_text(block.plain)


def _visible(block: _Block) -> str:
    return _BOLD.sub(lambda m: m.group(1), block.plain) if block.kind == "text" else block.plain


def _cut(text: str, limit: int) -> list[str]:
    """Split one over-long paragraph at line breaks, then spaces, then anywhere."""
    pieces: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        window = rest[:limit]
        while utf16_len(window) > limit:
            window = window[:-1]
        at = max(window.rfind("\n"), window.rfind(" "))
        if at <= limit // 2:
            at = len(window)
        pieces.append(rest[:at].rstrip())
        rest = rest[at:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _report_blocks(view: ReportView) -> list[_Block]:
    """A report: bold title, the period in italics, then one paragraph per section
    (its title in bold, ``label: value`` figures, ``label — text`` rows)."""
    blocks = [_Block(view.title, "title"), _Block(view.period, "footer")]
    if view.notice:
        blocks.append(_Block(view.notice, "footer"))
    for section in view.sections:
        lines = [f"*{_unstar(section.title)}*", *section.notes]
        lines += [f"{_unstar(f.label)}: *{_unstar(f.value)}*" for f in section.figures]
        lines += [f"*{_unstar(row.label)}* — {row.text}" for row in section.rows]
        blocks.append(_Block("\n".join(lines), "text"))
    return blocks


def _unstar(text: str) -> str:
    """Text shown inside ``*bold*`` markers: its own asterisks would end the bold."""
    return text.replace("*", "∗")


def _blocks(message: OutboundMessage, with_text: bool = True) -> list[_Block]:
    if message.report is not None:
        return _report_blocks(message.report)
    blocks: list[_Block] = []
    if message.title:
        blocks.append(_Block(message.title.strip(), "title"))
    if with_text and message.text.strip():
        paragraphs = re.split(r"\n\s*\n", message.text)
        blocks += [_Block(p.strip("\n").rstrip(), "text") for p in paragraphs if p.strip()]
    if message.footer:
        blocks.append(_Block(message.footer.strip(), "footer"))
    return blocks


def pack(blocks: list[_Block], limit: int = TELEGRAM_MESSAGE_CHARS) -> tuple[str, ...]:
    """Join paragraphs into as few chunks as fit ``limit`` visible characters each."""
    parts: list[_Block] = []
    for b in blocks:
        if utf16_len(_visible(b)) <= limit:
            parts.append(b)
        else:
            parts += [_Block(piece, b.kind) for piece in _cut(b.plain, limit)]
    chunks: list[str] = []
    current: list[_Block] = []
    size = 0
    for part in parts:
        grow = utf16_len(_visible(part)) + (2 if current else 0)
        if current and size + grow > limit:
            chunks.append("\n\n".join(_to_html(b) for b in current))
            current, size = [], 0
            grow = utf16_len(_visible(part))
        current.append(part)
        size += grow
    if current:
        chunks.append("\n\n".join(_to_html(b) for b in current))
    return tuple(chunks) or ("…",)


def callback_data(action: str) -> str:
    if not 0 < len(action.encode()) <= TELEGRAM_CALLBACK_BYTES:
        raise ValueError(f"button action {action!r} does not fit Telegram's "
                         f"{TELEGRAM_CALLBACK_BYTES}-byte callback_data")
    return action


def keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
    """One row of buttons (Approve / Reject, Submit / Cancel, Got it)."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=callback_data(b.action)) for b in buttons]]
    )


def acknowledged_keyboard(action: str) -> InlineKeyboardMarkup:
    """What replaces Got it after the click; pressing it again only says so."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(ACKNOWLEDGED, callback_data=callback_data(action))]]
    )


def render(message: OutboundMessage) -> Rendered:
    """A text message (a poll's header is ``poll_intro``)."""
    return Rendered(pack(_blocks(message)), keyboard(message.buttons))


def poll_intro(message: OutboundMessage) -> str | None:
    """The line sent above a native poll: who asks, and the notes (multi, anonymous)."""
    blocks = _blocks(message, with_text=False)
    return pack(blocks)[0] if blocks else None


def caption(message: OutboundMessage) -> tuple[str, tuple[str, ...]]:
    """A photo caption (the leading paragraphs that fit) and any text that must follow."""
    blocks = _blocks(message)
    if len(pack(blocks, CAPTION_CHARS)) == 1:
        return pack(blocks, CAPTION_CHARS)[0], ()
    if not blocks or blocks[0].kind != "title":
        blocks.insert(0, _Block(message.title or "Report", "title"))
    lead = 1
    while lead < len(blocks) and len(pack(blocks[:lead + 1], CAPTION_CHARS)) == 1:
        lead += 1
    return pack(blocks[:lead], CAPTION_CHARS)[0], pack(blocks[lead:])


def toast(text: str) -> str | None:
    """A reply short enough for the callback-query toast, else None (send a message)."""
    flat = text.strip()
    return flat if flat and len(flat) <= TOAST_CHARS and "\n" not in flat else None
