"""Checks on the command line's own options (``--days``, ``--out``, ``--db``): a bad
value is one ``CrierError`` line naming the option, before any work starts."""

from __future__ import annotations

from pathlib import Path

from announcements.errors import CrierError
from announcements.limits import MAX_REPORT_DAYS


def days_back(days: int) -> int:
    """``--days N`` counts whole days back from now: 1 to ``MAX_REPORT_DAYS``."""
    if not 1 <= days <= MAX_REPORT_DAYS:
        raise CrierError(f"--days {days} is not a number of days back",
                         f"Give 1 to {MAX_REPORT_DAYS}, e.g. --days 7 for the last week.")
    return days


def output_file(path: Path, option: str = "--out", example: str = "report.md") -> Path:
    """A file to write: its folder must exist, and it must not be a folder itself."""
    folder = path.parent
    if not folder.is_dir():
        raise CrierError(f"{option} {path}: the folder {folder} does not exist",
                         f"Create it first (mkdir -p {folder}), or write somewhere else.")
    if path.is_dir():
        raise CrierError(f"{option} {path} is a folder, not a file",
                         f"Name a file in it, e.g. {option} {path / example}.")
    return path
