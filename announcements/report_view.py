"""The weekly report as people read it, with no platform in it.

``build`` turns the figures of ``reports.WeeklyReport`` into a ``ReportView``:
a title, sections of labelled figures and rows, and the chart. Each adapter
renders the view natively (Block Kit, Telegram HTML, console text);
``markdown`` renders it for files only (``crier report weekly --out``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from announcements.figures import pct
from announcements.reports import AnnouncementLine, WeeklyReport
from announcements.types import OutboundMessage

TITLE = "Crier weekly report"
CHART_FILE = "crier-weekly.png"
#: Where the whole report is, for chat renderers that must leave rows out.
FULL_REPORT_HINT = "`crier report weekly --out report.md` writes the whole report"


@dataclass(frozen=True)
class Figure:
    """One labelled figure: ``Delivered``: ``1,200 (97%)``."""

    label: str
    value: str


@dataclass(frozen=True)
class Row:
    """One line of a list: ``label`` and what to say about it; ``cells`` fill the
    columns of a file's table."""

    label: str
    text: str
    cells: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    title: str
    figures: tuple[Figure, ...] = ()
    rows: tuple[Row, ...] = ()
    #: Column names of ``Row.cells`` for a file's table (first column: the label).
    columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportView:
    title: str
    period: str
    sections: tuple[Section, ...]
    notice: str | None = None  # e.g. "This report is 3.5 hours late …"
    headline: str = ""  # one line for notifications and previews
    chart: bytes | None = field(default=None, repr=False)


def _first_line(text: str, limit: int) -> str:
    first = next((x.strip() for x in text.splitlines() if x.strip()), "")
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def build(r: WeeklyReport) -> ReportView:
    """What the report says, once, for every platform and for files."""
    acks = [a for a in r.announcements if a.ack]
    asked = sum(a.delivered for a in acks)
    done = sum(a.acknowledged for a in acks)
    failed = sum(a.failed for a in r.announcements)
    unreachable = sum(a.unreachable for a in r.announcements)
    sections = [Section("Summary", figures=(
        Figure("Sent", f"{len(r.announcements)} announcements and polls"),
        Figure("Recipients", f"{r.recipients:,}"),
        Figure("Delivered", f"{r.delivered:,} ({pct(r.delivered, r.recipients)})"),
        Figure("Acknowledged", f"{done:,} of {asked:,} asked ({pct(done, asked)})"),
        Figure("Failed", f"{failed:,} · unreachable {unreachable:,}"),
        Figure("Opted out", ", ".join(f"{cat}: {n}" for cat, n in sorted(r.opt_outs.items()))
               + f" (new: {r.new_opt_outs})" if r.opt_outs else "nobody"),
        Figure("Left out", f"{r.opted_out_sends:,} opted out · "
               f"{r.held:,} held for another day (daily cap)"),
    ))]
    if r.departments:
        sections.append(Section(
            "Acknowledgement by department (lowest first)",
            rows=tuple(Row(d, f"{a:,} of {n:,} acknowledged · {pct(a, n)}",
                           (f"{a:,}", f"{n:,}", pct(a, n))) for d, n, a in r.departments),
            columns=("Department", "Acknowledged", "Delivered", "Rate")))
    urgent = [a for a in acks if a.urgent and a.acknowledged < a.delivered]
    if urgent:
        sections.append(Section("Urgent items still unacknowledged", rows=tuple(
            Row(f"#{a.id} {_first_line(a.text, 70)}",
                f"{a.delivered - a.acknowledged:,} of {a.delivered:,} have not acknowledged")
            for a in urgent)))
    if r.announcements:
        sections.append(Section("Announcements", rows=tuple(
            Row(f"#{a.id} {_first_line(a.text, 60)}", _announcement_text(a),
                (f"{a.recipients:,}", f"{a.delivered:,}",
                 f"{a.acknowledged:,} ({pct(a.acknowledged, a.delivered)})" if a.ack else "—"))
            for a in r.announcements),
            columns=("Announcement", "Recipients", "Delivered", "Acknowledged")))
    for poll, options, answered in r.polls:
        total = sum(n for _, n in options)
        anonymous = " (anonymous)" if poll.anonymous else ""
        sections.append(Section(
            f"Poll #{poll.id}: {_first_line(poll.text, 80)}{anonymous}",
            notes=(f"{answered:,} of {poll.delivered:,} answered",),
            rows=tuple(Row(label, f"{n:,} {'vote' if n == 1 else 'votes'} · {pct(n, total)}")
                       for label, n in options)))
    if r.failure_reasons:
        sections.append(Section("Failures and unreachable recipients", rows=tuple(
            Row(reason, f"× {n:,}") for reason, n in r.failure_reasons)))
    notice = None
    if r.late and r.late > timedelta(0):
        notice = (f"This report is {r.late.total_seconds() / 3600:.1f} hours late: Crier was "
                  f"not running when it was due ({r.end - r.late:%a %d %b %H:%M} UTC).")
    if not r.announcements:
        sections.append(Section("Nothing was sent in this period"))
    headline = (f"{len(r.announcements)} sent · {pct(r.delivered, r.recipients)} delivered · "
                f"{pct(done, asked)} of those asked acknowledged")
    return ReportView(TITLE, f"{r.start:%a %d %b} – {r.end:%a %d %b %Y}", tuple(sections),
                      notice, headline, r.chart_png)


def _announcement_text(a: AnnouncementLine) -> str:
    text = f"{a.recipients:,} recipients · {a.delivered:,} delivered"
    if a.ack:
        text += f" · {a.acknowledged:,} acknowledged ({pct(a.acknowledged, a.delivered)})"
    return text


def message(view: ReportView) -> OutboundMessage:
    """The report as a chat message; adapters render ``report``, ``text`` is the fallback."""
    return OutboundMessage(text=view.headline, title=view.title, report=view,
                           footer=view.notice)


def markdown(view: ReportView, chart_file: str | None = None) -> str:
    """The report as a Markdown file, linking the chart saved next to it."""
    lines = [f"# {view.title}, {view.period}", ""]
    if view.notice:
        lines += [f"> {view.notice}", ""]
    if chart_file:
        lines += [f"![Acknowledgement and poll chart]({chart_file})", ""]
    for section in view.sections:
        lines += [f"## {section.title}", ""]
        lines += [f"- {f.label}: {f.value}" for f in section.figures]
        lines += [f"_{note}_" for note in section.notes]
        if section.notes and section.rows:
            lines.append("")
        if section.columns:
            lines.append("| " + " | ".join(section.columns) + " |")
            lines.append("|---" + "|---:" * (len(section.columns) - 1) + "|")
            lines += ["| " + " | ".join(_cell(c) for c in (row.label, *row.cells)) + " |"
                      for row in section.rows]
        else:
            lines += [f"- **{row.label}**: {row.text}" for row in section.rows]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")
