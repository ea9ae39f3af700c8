"""The append-only audit log: who did what, when, to which announcement or person.

Rules, each enforced here:
- People appear by id only: ``actor_id``, ``subject_id``, and every email in a
  detail value is stored as ``person#ID`` (an address nobody in the directory has
  as ``[email]``). Reading turns ids back into today's address, so an erasure,
  which pseudonymizes the person row, changes no audit row.
- Stored values are one line: newlines, control and bidirectional-override
  characters in an action or a detail become visible ``\\uXXXX`` escapes.
- Rows are never updated or deleted: a session refuses to flush or execute it
  (``AppendOnly``), and migration 0005's database triggers refuse it as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, event, insert, or_
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from announcements.errors import CrierError
from storage.models import AuditEvent, Person

AUDIT_TABLE = cast(Table, AuditEvent.__table__)  # type: ignore[attr-defined]
EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PERSON_REF = re.compile(r"person#(\d+)")
UNKNOWN_EMAIL = "[email]"
#: C0/C1 controls, line and paragraph separators, bidirectional overrides and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
DATE_FORMS = "`2026-11-01` or `2026-11-01 09:00` (UTC)"


class AppendOnly(CrierError):
    """An attempt to change or delete an audit row."""


def neutralize(text: str) -> str:
    """``text`` on one line: unsafe characters become ``\\uXXXX``."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# --------------------------------------------------------------------------- writing


def record(
    session: Session,
    at: datetime,
    action: str,
    *,
    actor_id: int | None = None,
    announcement_id: int | None = None,
    subject_id: int | None = None,
    **detail: Any,
) -> None:
    """Append one event; details are neutralized and emails become person ids."""
    insert_many(session, [Event(at, action, actor_id, announcement_id, subject_id, detail)])


@dataclass(frozen=True)
class Event:
    at: datetime
    action: str
    actor_id: int | None = None
    announcement_id: int | None = None
    subject_id: int | None = None
    detail: Mapping[str, Any] | None = None


def insert_many(session: Session, events: list[Event]) -> None:
    """Append events with one statement (an import writes thousands)."""
    if not events:
        return
    texts = [_to_text(e.detail) for e in events]
    emails = {m.lower() for t in texts if t for m in EMAIL.findall(t)}
    ids = _ids_of(session, emails)
    session.execute(insert(AUDIT_TABLE), [
        {"at": e.at, "action": neutralize(e.action)[:40], "actor_id": e.actor_id,
         "announcement_id": e.announcement_id, "subject_id": e.subject_id,
         "detail": _by_id(t, ids)} for e, t in zip(events, texts, strict=True)])


def _to_text(detail: Mapping[str, Any] | None) -> str | None:
    if not detail:
        return None
    clean = {neutralize(str(k)): _clean(v) for k, v in detail.items()}
    return json.dumps(clean, default=str, sort_keys=True, ensure_ascii=False)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return neutralize(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return neutralize(str(value))


def _ids_of(session: Session, emails: set[str]) -> dict[str, int]:
    if not emails:
        return {}
    rows = session.execute(select(Person.id, Person.email)
                           .where(col(Person.email).in_(sorted(emails)))).tuples().all()
    return {email.lower(): int(pid or 0) for pid, email in rows}


def _by_id(text: str | None, ids: Mapping[str, int]) -> str | None:
    if text is None:
        return None
    return EMAIL.sub(lambda m: f"person#{ids[m.group().lower()]}" if m.group().lower() in ids
                     else UNKNOWN_EMAIL, text)


@event.listens_for(OrmSession, "before_flush")
def _no_changes(session: OrmSession, _context: Any, _instances: Any) -> None:
    if any(isinstance(o, AuditEvent) for o in (*session.dirty, *session.deleted)):
        raise AppendOnly("audit events cannot be changed or deleted",
                         "Record a new event instead.")


@event.listens_for(OrmSession, "do_orm_execute")
def _no_bulk_changes(state: ORMExecuteState) -> None:
    table = getattr(state.statement, "table", None)
    if (state.is_update or state.is_delete) and getattr(table, "name", None) == AUDIT_TABLE.name:
        raise AppendOnly("audit events cannot be changed or deleted",
                         "Record a new event instead.")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Entry:
    """One event as an admin reads it: people by today's address."""

    id: int
    at: datetime
    actor: str | None
    action: str
    announcement_id: int | None
    subject: str | None
    detail: dict[str, Any]

    def detail_text(self) -> str:
        return " ".join(f"{k}={_show(v)}" for k, v in sorted(self.detail.items()))


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_show(v) for v in value)
    return "-" if value is None else str(value)


def parse_since(text: str) -> datetime:
    """``2026-11-01`` or ``2026-11-01 09:00`` (or ISO with ``T``), read as UTC."""
    raw = text.strip()
    try:
        when = datetime.fromisoformat(raw.replace(" ", "T", 1) if " " in raw else raw)
    except ValueError:
        raise CrierError(f'"{neutralize(raw)[:40]}" is not a date',
                         f"Write the date as {DATE_FORMS}.") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class Query:
    since: datetime | None = None
    actor_id: int | None = None
    announcement_id: int | None = None
    person_id: int | None = None  # events about the person, or done by them
    limit: int | None = None


def person_id(session: Session, email: str) -> int:
    """The id of ``email``; an unknown address is an error."""
    pid = session.execute(select(Person.id).where(
        col(Person.email) == email.strip().lower())).scalar_one_or_none()
    if pid is None:
        raise CrierError(f'there is no "{neutralize(email.strip())[:80]}" in the directory',
                         "Check the spelling of the address.")
    return int(pid)


def entries(session: Session, query: Query) -> list[Entry]:
    """Events matching ``query``, oldest first (the newest ``limit`` when given)."""
    stmt = select(AuditEvent)
    if query.since is not None:
        stmt = stmt.where(col(AuditEvent.at) >= query.since)
    if query.actor_id is not None:
        stmt = stmt.where(col(AuditEvent.actor_id) == query.actor_id)
    if query.announcement_id is not None:
        stmt = stmt.where(col(AuditEvent.announcement_id) == query.announcement_id)
    if query.person_id is not None:
        stmt = stmt.where(or_(col(AuditEvent.subject_id) == query.person_id,
                              col(AuditEvent.actor_id) == query.person_id))
    stmt = stmt.order_by(col(AuditEvent.id).desc())
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    rows = list(reversed(session.execute(stmt).scalars().all()))
    return read(session, rows)


def read(session: Session, rows: Iterable[AuditEvent]) -> list[Entry]:
    rows = list(rows)
    details = [json.loads(r.detail) if r.detail else {} for r in rows]
    wanted = {i for r in rows for i in (r.actor_id, r.subject_id) if i is not None}
    wanted |= {int(m) for d in details for m in PERSON_REF.findall(json.dumps(d))}
    emails = _emails(session, wanted)
    return [Entry(int(r.id or 0), r.at, emails.get(r.actor_id) if r.actor_id else None,
                  r.action, r.announcement_id,
                  emails.get(r.subject_id) if r.subject_id else None,
                  _named(d, emails)) for r, d in zip(rows, details, strict=True)]


def _emails(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Person.id, Person.email)
                           .where(col(Person.id).in_(sorted(ids)))).tuples().all()
    return {int(pid or 0): email for pid, email in rows}


def _named(detail: dict[str, Any], emails: Mapping[int, str]) -> dict[str, Any]:
    text = json.dumps(detail)
    named = PERSON_REF.sub(lambda m: emails.get(int(m.group(1)), m.group()), text)
    return cast(dict[str, Any], json.loads(named))


def as_table(rows: list[Entry]) -> str:
    """One line per event: time (UTC), actor, action, subject, details."""
    if not rows:
        return "No audit events match."
    return "\n".join(_line(e) for e in rows)


def _line(e: Entry) -> str:
    subject = " ".join(s for s in (f"#{e.announcement_id}" if e.announcement_id else "",
                                   e.subject or "") if s) or "-"
    return (f"{e.at:%Y-%m-%d %H:%M:%S}Z  {e.actor or 'crier'}  {e.action}  {subject}  "
            f"{e.detail_text()}").rstrip()


CSV_COLUMNS = ("id", "at_utc", "actor", "action", "announcement", "subject", "detail")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def as_csv(rows: list[Entry]) -> str:
    """CSV with a header; a cell a spreadsheet would run as a formula gets a leading `'`."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in rows:
        cells = [e.id, e.at.strftime("%Y-%m-%dT%H:%M:%SZ"), e.actor or "", e.action,
                 e.announcement_id or "", e.subject or "", e.detail_text()]
        writer.writerow(["'" + c if isinstance(c, str) and c.startswith(_FORMULA) else c
                         for c in cells])
    return out.getvalue()
