"""``crier directory import FILE.csv``: a directory file read into person records.

A directory file is CSV in UTF-8 (a byte-order mark is allowed) whose first line
names the columns: ``email,name,department`` are required,
``location,title,timezone,slack_id,telegram_id,teams_id,roles`` optional.

Rules of reading a file, each enforced once below (the rules of writing it
are those of ``upsert.apply``):
- Every line is checked and every problem reported with its line number.
- A column present in the header is the truth for every row; an absent column
  leaves what is stored alone. Platform ids are the exception: an empty
  ``slack_id``/``telegram_id``/``teams_id`` cell leaves the stored link alone,
  since links also come from platform sync.
- A ``roles`` column replaces each listed person's grants with those in the
  cell, so an empty cell removes them all.
- A column Crier does not know is ignored and named in the result; one that
  looks like a misspelt known column is refused. A file separated by
  semicolons or tabs is refused with the way to save it with commas.
- People missing from the file are left as they are, unless the import is a
  full one (``deactivate_missing``).
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TextIO
from zoneinfo import available_timezones

from announcements.clock import Clock
from announcements.directory import upsert
from announcements.directory.records import (
    DEFAULT_TIMEZONE,
    MAX_LENGTHS,
    PERSON_COLUMNS,
    DirectoryImportError,
    ImportResult,
    PersonRecord,
    UpsertPolicy,
)
from announcements.errors import CrierError
from announcements.timespec import zone
from storage.db import Database

REQUIRED_COLUMNS = ("email", "name", "department")
OPTIONAL_COLUMNS = (
    "location", "title", "timezone", "slack_id", "telegram_id", "teams_id", "roles",
)
EXPECTED_HEADER = ",".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
#: CSV column -> ``Identity.platform``.
PLATFORM_COLUMNS = {"slack_id": "slack", "telegram_id": "telegram", "teams_id": "teams"}
#: Separators spreadsheet programs use instead of commas, by name.
OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs"}

#: ``local@domain.tld``; letters may be any script (internationalized addresses).
_EMAIL = re.compile(
    r"[\w!#$%&'*+/=?^`{|}~.-]+@[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)+"
)
_PLATFORM_ID = re.compile(r"\S{1,200}")

HEADER_HINT = (
    f"The first line must name the columns, for example:\n{EXPECTED_HEADER}\n"
    "(email, name and department are required; the others are optional)"
)


def import_csv(
    db: Database,
    source: str | Path | TextIO,
    clock: Clock,
    *,
    deactivate_missing: bool = False,
    new_departments: bool = False,
    new_locations: bool = False,
) -> ImportResult:
    """Create or update the people of a directory file, all or nothing.

    ``source`` is a file path (``str`` or ``Path``) or an open text stream.
    ``deactivate_missing`` makes it a full import: active people not in the file
    are deactivated. ``new_departments``/``new_locations`` accept names that
    look like typos of existing ones.
    """
    records = _read_records(source)
    if not records:
        raise DirectoryImportError(["line 1: the file is empty"], HEADER_HINT)
    _, header = records[0]
    columns, ignored = _read_header(header)
    people, problems = _parse_rows(records[1:], len(header), columns)
    policy = UpsertPolicy(source="csv", deactivate_missing=deactivate_missing,
                          new_departments=new_departments, new_locations=new_locations)
    result = upsert.apply(db, people, policy, clock, problems)
    if ignored:
        names = ", ".join(f'"{name}"' for name in ignored)
        noun = "column" if len(ignored) == 1 else "columns"
        accepted = ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
        result = replace(result, notes=(
            f"Ignored the {noun} {names}: Crier reads only {accepted}.", *result.notes))
    return result


def _read_records(source: str | Path | TextIO) -> list[tuple[int, list[str]]]:
    if not isinstance(source, str | Path):
        return _parse_csv(source, "the input")
    path = Path(source)
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return _parse_csv(stream, str(path))
    except FileNotFoundError:
        raise CrierError(f"there is no file {path}", "Check the path and try again.") from None
    except IsADirectoryError:
        raise CrierError(f"{path} is a folder, not a CSV file") from None


def _parse_csv(stream: TextIO, name: str) -> list[tuple[int, list[str]]]:
    """Non-blank CSV records with the line each starts on (the header is line 1)."""
    reader = csv.reader(stream)
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append((start, cells))
            start = reader.line_num + 1
    except UnicodeDecodeError:
        raise DirectoryImportError(
            [f"line {start}: {name} is not UTF-8 text"],
            "Save the file as \"CSV UTF-8\" and import it again.",
        ) from None
    except csv.Error as exc:
        raise DirectoryImportError([f"line {start}: {exc}"]) from None
    if records and records[0][1]:
        records[0][1][0] = records[0][1][0].lstrip("\ufeff")
    return records


def _column_name(raw: str) -> str:
    """Header names are case-insensitive; ``Slack ID`` and ``slack-id`` mean ``slack_id``."""
    return re.sub(r"[\s-]+", "_", raw.strip().lower())


def _read_header(cells: list[str]) -> tuple[dict[str, int], list[str]]:
    """Column name -> index, and the names of the columns that are ignored."""
    _refuse_other_delimiters(cells)
    known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    columns: dict[str, int] = {}
    ignored: list[str] = []
    problems: list[str] = []
    for index, raw in enumerate(cells):
        name = _column_name(raw)
        if name in columns:
            problems.append(f'line 1: the column "{name}" appears twice')
        elif name in known:
            columns[name] = index
        elif name and (close := difflib.get_close_matches(name, known, n=1, cutoff=0.8)):
            problems.append(f'line 1: unknown column "{raw.strip()}" (did you mean {close[0]}?)')
        elif name:
            ignored.append(raw.strip())
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        problems.insert(0, f"line 1: the header lacks the required column(s) {', '.join(missing)}")
        if any("@" in cell for cell in cells):
            problems.insert(1, "line 1 looks like a person, not a header")
    if problems:
        raise DirectoryImportError(problems, HEADER_HINT)
    return columns, ignored


def _refuse_other_delimiters(cells: list[str]) -> None:
    """A header of one cell such as ``email;name;department`` is not comma-separated."""
    if len(cells) != 1:
        return
    for delimiter, name in OTHER_DELIMITERS.items():
        parts = [_column_name(p) for p in cells[0].split(delimiter)]
        if len(parts) > 1 and "email" in parts:
            raise DirectoryImportError(
                [f"line 1: the columns are separated by {name}, not commas"],
                "Save the file as \"CSV UTF-8 (Comma delimited)\" (or replace the "
                f"{name} with commas) and import it again.")


def _parse_rows(
    records: list[tuple[int, list[str]]], width: int, columns: dict[str, int]
) -> tuple[list[PersonRecord], list[tuple[int, str]]]:
    """Every row with a usable email as a record; every problem, with its line."""
    zones: dict[str, str | None] = {}
    people: list[PersonRecord] = []
    problems: list[tuple[int, str]] = []
    for line, cells in records:
        record, found = _parse_row(line, cells, width, columns, zones)
        problems.extend((line, f"line {line}: {text}") for text in found)
        if record is not None:
            people.append(record)
    return people, problems


def _cell(cells: list[str], columns: Mapping[str, int], name: str) -> str:
    index = columns.get(name)
    if index is None or index >= len(cells):
        return ""
    return cells[index].strip()


def _parse_row(line: int, cells: list[str], width: int, columns: dict[str, int],
               zones: dict[str, str | None]) -> tuple[PersonRecord | None, list[str]]:
    """The record and its problems; the record is None only when it has no usable email."""
    problems: list[str] = []
    if any(cell.strip() for cell in cells[width:]):
        problems.append(
            f"has {len(cells)} values but the header names {width} columns "
            '(put "quotes" around a value that contains a comma)'
        )
    raw_email = _cell(cells, columns, "email")
    email_problem = _email_problem(raw_email)
    if email_problem:
        problems.append(email_problem)
    person: dict[str, str | None] = {}
    for name in PERSON_COLUMNS:
        if name in columns:
            person[name] = _cell(cells, columns, name)
    for name in ("name", "department"):
        if not person[name]:
            problems.append(f"{name} is missing")
            person[name] = None
    for name, value in person.items():
        if value and len(value) > MAX_LENGTHS[name]:
            problems.append(f"{name} is longer than {MAX_LENGTHS[name]} characters")
    if "timezone" in person:
        wanted = person["timezone"] or DEFAULT_TIMEZONE
        if wanted not in zones:
            zones[wanted] = _canonical_zone(wanted)
        person["timezone"] = zones[wanted]
        if zones[wanted] is None:
            problems.append(_unknown_zone(wanted))
    identities = _platform_ids(cells, columns, problems)
    roles = None
    if "roles" in columns:
        roles = tuple(i.strip() for i in _cell(cells, columns, "roles").split(";") if i.strip())
    if email_problem:
        return None, problems
    return PersonRecord(
        raw_email.lower(), name=person["name"], department=person["department"],
        location=person.get("location"), title=person.get("title"),
        timezone=person.get("timezone"), identities=identities, roles=roles,
        origin=f"line {line}", position=line), problems


def _email_problem(raw: str) -> str | None:
    """Emails are compared in lower case and must look like ``name@domain.tld``."""
    if not raw:
        return "email is missing"
    if len(raw) > MAX_LENGTHS["email"] or not _EMAIL.fullmatch(raw.lower()):
        return f'email "{raw}" is not a valid email address'
    return None


def _platform_ids(cells: list[str], columns: dict[str, int], problems: list[str]) -> dict[str, str]:
    identities: dict[str, str] = {}
    for column, platform in PLATFORM_COLUMNS.items():
        value = _cell(cells, columns, column)
        if not value:
            continue
        if not _PLATFORM_ID.fullmatch(value):
            problems.append(f'{column} "{value}" is not a {platform} user id')
        else:
            identities[platform] = value
    return identities


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def _canonical_zone(name: str) -> str | None:
    """The IANA spelling of a time zone written in any case; None if there is none."""
    if name.lower() in _zone_names():
        return _zone_names()[name.lower()]
    try:
        zone(name)
    except CrierError:
        return None
    return name


def _unknown_zone(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), _zone_names(), n=1, cutoff=0.7)
    if close:
        return f'time zone "{name}" is unknown (did you mean {_zone_names()[close[0]]}?)'
    return f'time zone "{name}" is unknown (use an IANA name such as Europe/Berlin)'
