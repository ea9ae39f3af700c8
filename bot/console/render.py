"""Console rendering: every button is shown as ``[ID] Label``."""

from __future__ import annotations

from announcements.types import OutboundMessage


def render(message: OutboundMessage, width: int = 72) -> str:
    lines: list[str] = []
    if message.title:
        head = f"── {message.title} "
        lines.append(head + "─" * max(3, width - len(head)))
    if message.poll is None:
        lines.append(message.text)
    else:
        lines.append(message.poll.question)
        for choice in message.poll.choices:
            count = f" ({choice.votes})" if choice.votes is not None else ""
            if message.poll.closed:
                lines.append(f"  {choice.label}{count}")
            else:
                lines.append(f"  [{choice.action}] {choice.label}{count}")
    if message.footer:
        lines.append(message.footer)
    if message.buttons:
        lines.append("  ".join(f"[{b.action}] {b.label}" for b in message.buttons))
    return "\n".join(lines)


def buttons_of(message: OutboundMessage) -> list[str]:
    ids = [b.action for b in message.buttons]
    if message.poll and not message.poll.closed:
        ids += [c.action for c in message.poll.choices]
    return ids
