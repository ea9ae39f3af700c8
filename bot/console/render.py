"""Console rendering: every button is shown as ``[ID] Label``."""

from __future__ import annotations

from announcements.report_view import ReportView
from announcements.types import OutboundMessage

#: The widest label column of a report before labels get a line of their own.
LABEL_WIDTH = 30


def _rule(title: str, width: int) -> str:
    head = f"── {title} "
    return head + "─" * max(3, width - len(head))


def report(view: ReportView, width: int = 72) -> str:
    """A report as aligned text: each section's title, then ``label   figure`` lines."""
    lines = [_rule(view.title, width), view.period]
    if view.notice:
        lines.append(f"! {view.notice}")
    for section in view.sections:
        lines += ["", section.title]
        pairs = [(f.label, f.value) for f in section.figures]
        pairs += [(r.label, r.text) for r in section.rows]
        pad = min(LABEL_WIDTH, max((len(label) for label, _ in pairs), default=0))
        lines += [f"  {note}" for note in section.notes]
        for label, value in pairs:
            if len(label) > pad:
                lines += [f"  {label}", f"  {'':{pad}}  {value}"]
            else:
                lines.append(f"  {label:{pad}}  {value}")
    return "\n".join(lines)


def render(message: OutboundMessage, width: int = 72) -> str:
    if message.report is not None:
        return report(message.report, width)
    lines: list[str] = []
    if message.title:
        lines.append(_rule(message.title, width))
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
