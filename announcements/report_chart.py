"""The weekly report's chart (PNG): the questions a comms lead asks, one panel each.

- Who has not read it? Per department, delivered and acknowledged side by side,
  with the counts on the bars, lowest rate first.
- Which announcement was read least? Acknowledgement rate per announcement.
- What did people answer? Poll results.
- Is it getting better? The acknowledgement rate of the last eight periods.

Rule: text the installed fonts cannot draw (emoji, CJK without a CJK font) is
left out quietly, never drawn as empty boxes and never warned about.
"""

from __future__ import annotations

import io
import math
import unicodedata
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from announcements.figures import percent

if TYPE_CHECKING:
    from announcements.reports import WeeklyReport

#: Tried in order; the first one found draws Latin text, the others fill its gaps.
FONT_FAMILIES = ("DejaVu Sans", "Noto Sans", "Noto Sans CJK JP", "Noto Sans CJK SC",
                 "Noto Sans JP", "WenQuanYi Zen Hei", "Droid Sans Fallback", "Noto Emoji")
TITLE_CHARS = 34
MAX_DEPARTMENTS = 14
MAX_ANNOUNCEMENTS = 12
MAX_POLL_BARS = 12
DELIVERED = "#c8d1dc"
INK = "#2b2f36"
MUTED = "#6b7280"
#: Acknowledgement rate (percent) -> colour: amber below 50, blue below 80, else teal.
BANDS = ((50, "#e39b3b"), (80, "#6f9fcf"), (101, "#2a9d8f"))
POLL = "#8c7fd0"


@cache
def _fonts() -> tuple[tuple[str, ...], frozenset[int]]:
    """The font families present here, and every character they can draw."""
    from matplotlib import font_manager, ft2font

    names: list[str] = []
    covered: set[int] = set()
    for family in FONT_FAMILIES:
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=family),
                                         fallback_to_default=False)
        except ValueError:
            continue
        font = ft2font.FT2Font(path)
        if font.family_name in names:
            continue
        names.append(font.family_name)
        covered |= set(font.get_charmap())
    return tuple(names), frozenset(covered)


def drawable(text: str) -> str:
    """``text`` without the characters no installed font draws (spaces tidied)."""
    _, covered = _fonts()
    kept = "".join(ch for ch in text if ord(ch) in covered
                   and unicodedata.category(ch) not in ("Cf", "Mn", "Cs", "Co"))
    return " ".join(kept.split())


def short(text: str, limit: int = TITLE_CHARS) -> str:
    """The first line of ``text`` in at most ``limit`` characters, cut with an ellipsis."""
    first = drawable(next((x for x in text.splitlines() if x.strip()), ""))
    if len(first) <= limit:
        return first
    cut = first[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,.;:-") + "…"


def colour(rate: int) -> str:
    """The colour of an acknowledgement rate in percent (``BANDS``)."""
    return next(c for limit, c in BANDS if rate < limit)


def render(r: WeeklyReport) -> bytes:
    """The chart of ``r`` as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    families, _ = _fonts()
    style: dict[str, Any] = {
        "font.family": list(families) or ["sans-serif"], "axes.edgecolor": "#d0d5dc",
        "axes.labelcolor": INK, "xtick.color": MUTED, "ytick.color": INK,
        "axes.spines.top": False, "axes.spines.right": False}
    with plt.rc_context(cast(Any, style)):
        rows = max(len(r.departments[:MAX_DEPARTMENTS]), len(_acks(r)), _poll_rows(r), 5)
        fig, grid = plt.subplots(2, 2, figsize=(14, 6.5 + 0.42 * rows),
                                 gridspec_kw={"height_ratios": [max(rows, 5), 6]})
        fig.suptitle(f"Crier weekly report · {r.start:%d %b} – {r.end:%d %b %Y}",
                     fontsize=15, color=INK, x=0.01, ha="left", fontweight="bold")
        _departments(grid[0][0], r)
        _announcements(grid[0][1], r)
        _polls(grid[1][0], r)
        _trend(grid[1][1], r)
        fig.text(0.01, 0.008, "Bar colours: amber below 50% acknowledged · blue 50–79% · "
                 "teal 80% and more. Grey bars: copies delivered.", fontsize=9, color=MUTED)
        fig.tight_layout(rect=(0, 0.02, 1, 0.97), h_pad=2.5, w_pad=3)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, facecolor="white")
        plt.close(fig)
    return buf.getvalue()


def _whole_numbers(ax: Any) -> None:
    """Counts of people and votes: no 0.5 ticks."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def _empty(ax: Any, title: str, note: str) -> None:
    ax.set_title(title, loc="left", fontsize=12, color=INK, fontweight="bold")
    ax.text(0.5, 0.5, note, ha="center", va="center", color=MUTED, fontsize=11,
            transform=ax.transAxes)
    ax.set_axis_off()


def _departments(ax: Any, r: WeeklyReport) -> None:
    title = "Acknowledged by department, lowest first"
    rows = r.departments[:MAX_DEPARTMENTS]
    if not rows:
        _empty(ax, title, "No acknowledgement requests in this period")
        return
    ax.set_title(title, loc="left", fontsize=12, color=INK, fontweight="bold")
    top = max(n for _, n, _ in rows)
    height = 0.38
    for i, (_, n, acked) in enumerate(rows):
        ax.barh(i - height / 2, n, height, color=DELIVERED)
        ax.barh(i + height / 2, acked, height, color=colour(percent(acked, n)))
        ax.text(n + top * 0.01, i - height / 2, f"{n:,} delivered", va="center",
                fontsize=8.5, color=MUTED)
        ax.text(acked + top * 0.01, i + height / 2,
                f"{acked:,} acknowledged · {percent(acked, n)}%", va="center", fontsize=8.5,
                color=INK)
    ax.set_yticks(range(len(rows)), [short(d, 22) for d, _, _ in rows])
    ax.set_ylim(len(rows) - 0.4, -0.6)
    ax.set_xlim(0, top * 1.45)
    _whole_numbers(ax)
    ax.set_xlabel("people")
    if len(r.departments) > len(rows):
        ax.text(0, -0.08, f"+ {len(r.departments) - len(rows)} more departments in the report",
                transform=ax.transAxes, fontsize=8.5, color=MUTED)


def _acks(r: WeeklyReport) -> list[Any]:
    return [a for a in r.announcements if a.ack and a.delivered][-MAX_ANNOUNCEMENTS:]


def _announcements(ax: Any, r: WeeklyReport) -> None:
    title = "Acknowledged by announcement, lowest first"
    acks = sorted(_acks(r), key=lambda a: (percent(a.acknowledged, a.delivered), a.id))
    if not acks:
        _empty(ax, title, "No announcement asked for acknowledgement")
        return
    ax.set_title(title, loc="left", fontsize=12, color=INK, fontweight="bold")
    rates = [percent(a.acknowledged, a.delivered) for a in acks]
    ax.barh(range(len(acks)), [100] * len(acks), 0.5, color="#eef1f5")
    ax.barh(range(len(acks)), rates, 0.5, color=[colour(v) for v in rates])
    for i, (a, v) in enumerate(zip(acks, rates, strict=True)):
        ax.text(101, i, f"{v}%  ({a.acknowledged:,} of {a.delivered:,})", va="center",
                fontsize=8.5, color=INK)
    ax.set_yticks(range(len(acks)), [f"#{a.id} {short(a.text)}" for a in acks])
    ax.set_ylim(len(acks) - 0.4, -0.6)
    ax.set_xlim(0, 135)
    ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])


def _poll_rows(r: WeeklyReport) -> int:
    return min(MAX_POLL_BARS, sum(len(options) + 1 for _, options, _ in r.polls))


def _polls(ax: Any, r: WeeklyReport) -> None:
    """One group of bars per poll, under a heading with its question and turnout."""
    title = "Poll results"
    headings: list[tuple[int, str]] = []
    bars: list[tuple[int, str, int, int]] = []  # (row, option, votes, share)
    row = 0
    for poll, options, answered in r.polls:
        if bars and len(bars) + len(options) > MAX_POLL_BARS:
            break
        total = sum(n for _, n in options)
        headings.append((row, f"#{poll.id} {short(poll.text, 40)} · {answered:,} of "
                              f"{poll.delivered:,} answered"))
        row += 1
        for label, n in options:
            bars.append((row, short(label, 24), n, percent(n, total)))
            row += 1
    if not bars:
        _empty(ax, title, "No polls in this period")
        return
    ax.set_title(title, loc="left", fontsize=12, color=INK, fontweight="bold")
    top = max(n for _, _, n, _ in bars) or 1
    ax.barh([b[0] for b in bars], [b[2] for b in bars], 0.6, color=POLL)
    for y, _, n, share in bars:
        ax.text(n + top * 0.01, y, f"{n:,} ({share}%)", va="center", fontsize=8.5, color=INK)
    for y, heading in headings:
        ax.text(0, y + 0.15, heading, fontsize=9.5, color=INK, fontweight="bold",
                transform=ax.get_yaxis_transform())
    ax.set_yticks([b[0] for b in bars], [b[1] for b in bars])
    ax.set_ylim(row - 0.4, -0.6)
    ax.set_xlim(0, top * 1.3)
    _whole_numbers(ax)
    ax.set_xlabel("votes")


def _trend(ax: Any, r: WeeklyReport) -> None:
    days = round((r.end - r.start).total_seconds() / 86400)
    period = "weeks" if days == 7 else f"periods of {days} days"
    title = f"Acknowledgement rate, last {len(r.trend)} {period}"
    if not any(n for _, n, _ in r.trend):
        _empty(ax, title, "No acknowledgement requests in the last weeks")
        return
    ax.set_title(title, loc="left", fontsize=12, color=INK, fontweight="bold")
    xs = list(range(len(r.trend)))
    ys = [percent(a, n) if n else math.nan for _, n, a in r.trend]
    ax.axhspan(0, 50, color="#fbefe2", zorder=0)
    ax.plot(xs, ys, color="#5b8db8", linewidth=2.2, marker="o", markersize=6, zorder=2)
    for x, y, (_, n, _) in zip(xs, ys, r.trend, strict=True):
        if n:
            ax.annotate(f"{y:.0f}%", (x, y), textcoords="offset points", xytext=(0, 8),
                        ha="center", fontsize=8.5, color=INK)
    if not all(n for _, n, _ in r.trend):
        ax.text(0.01, 0.97, "Gaps: no acknowledgement requests then", fontsize=8.5,
                color=MUTED, transform=ax.transAxes, va="top")
    ax.set_xticks(xs, [f"{start:%d %b}" for start, _, _ in r.trend], fontsize=8.5)
    ax.set_ylim(0, 110)
    ax.set_yticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_xlabel("period starting")
    ax.grid(axis="y", color="#eceff3", zorder=1)
