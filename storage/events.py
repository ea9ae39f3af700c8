"""Exactly one effect per inbound platform event, however often it arrives.

An event (a Slack event id, a Telegram update id, a click within the double-click
window) is known by its keys. While the pipeline has the domain handle it, the
keys sit in the ``PENDING`` context variable; the first database transaction that
writes anything also inserts the keys' ``InboundEvent`` rows, just before it
commits. So the event is marked handled in the same transaction as its effect:
a handler that fails leaves nothing recorded (the platform's retry or the
person's second click takes effect), and a duplicate's insert fails, which rolls
its whole effect back. An event whose handling writes nothing (a read-only
command) is recorded afterwards by ``record``, so a retry is not answered twice.

The domain keeps using ``Database.session()`` unchanged; the listeners below
apply to every ORM session and do nothing when no event is pending.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState, Session
from sqlmodel import col

from storage.db import Database
from storage.models import InboundEvent

#: The longest key the ``inbound_event`` table holds.
KEY_CHARS = 200
_WROTE = "crier_wrote"
_RECORDING = "crier_recording"


@dataclass
class Pending:
    """An inbound event being handled: ``recorded`` once its rows are committed."""

    platform: str
    keys: tuple[str, ...]
    at: datetime
    recorded: bool = False

    def rows(self) -> list[InboundEvent]:
        return [InboundEvent(platform=self.platform, event_id=k[:KEY_CHARS], received_at=self.at)
                for k in self.keys]


#: The event whose effect the current database transaction is (None: not an event's).
PENDING: ContextVar[Pending | None] = ContextVar("crier_pending_event", default=None)


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


@event.listens_for(Session, "before_commit")
def _record_with_effect(session: Session) -> None:
    pending = PENDING.get()
    if pending is None or pending.recorded or not pending.keys:
        return
    if not session.info.get(_WROTE) and not (session.new or session.dirty or session.deleted):
        return
    session.add_all(pending.rows())
    session.info[_RECORDING] = pending


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    pending = session.info.pop(_RECORDING, None)
    if isinstance(pending, Pending):
        pending.recorded = True
    session.info.pop(_WROTE, None)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_RECORDING, None)
    session.info.pop(_WROTE, None)


def seen(db: Database, pending: Pending) -> bool:
    """True when any of the event's keys was recorded before."""
    if not pending.keys:
        return False
    with db.session() as s:
        return s.execute(select(col(InboundEvent.id)).where(
            col(InboundEvent.platform) == pending.platform,
            col(InboundEvent.event_id).in_([k[:KEY_CHARS] for k in pending.keys])
        ).limit(1)).first() is not None


def record(db: Database, pending: Pending) -> bool:
    """Record an event whose handling wrote nothing; False when it was recorded already."""
    if pending.recorded or not pending.keys:
        return True
    try:
        with db.session() as s:
            s.add_all(pending.rows())
    except IntegrityError:
        return False
    pending.recorded = True
    return True


def first_time(db: Database, platform: str, event_id: str, now: datetime) -> bool:
    """Record ``event_id`` on its own; True the first time it is seen, False for a repeat."""
    return record(db, Pending(platform, (event_id,), now))


def prune(db: Database, older_than: datetime) -> int:
    """Forget event ids older than any platform retries (Slack: minutes; Telegram: 24 h)."""
    with db.session() as s:
        result = s.execute(delete(InboundEvent).where(col(InboundEvent.received_at) < older_than))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
