"""The durable outbox: delivery rows written in the caller's transaction
(``fanout.enqueue``), then claimed under a lease and recorded by the delivery
engine (``Outbox``).

Rules:
- A claim leases due rows to one worker (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL, so several processes share the work without sending a row twice).
  Small messages (approval requests, outcomes, progress) are claimed before bulk
  sends, so a 100,000-person broadcast never delays an approval request.
- A row whose lease expired, or whose worker's heartbeat is stale (the worker
  died; ``heartbeat``), is due again; each claim counts an attempt, so a row that
  keeps killing workers ends ``failed``.
- A result is written only by the worker that still holds the row's lease.
- A copy delivered while the announcement changed under it (recalled, edited,
  poll closed) is queued again at once to be deleted or updated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from announcements.delivery.heartbeat import live_owners, owner_gone
from announcements.types import BULK_PURPOSES, DeliveryAction, DeliveryStatus, Purpose, Status
from storage.db import Database
from storage.models import Announcement, AuditEvent, Correction, Delivery

DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
ANNOUNCEMENT = Announcement.__table__  # type: ignore[attr-defined]
CORRECTION = Correction.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
BULK = sorted(p.value for p in BULK_PURPOSES)
OPEN = (DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value)


@dataclass(frozen=True)
class Version:
    """What a delivered copy of an announcement depends on."""

    recalled: bool = False
    closed: bool = False
    edits: int = 0  # approved edits


@dataclass(frozen=True)
class Claimed:
    id: int
    announcement_id: int
    person_id: int
    platform: str
    purpose: str
    address: str | None
    attempts: int
    message_ref: str | None
    action: str = DeliveryAction.SEND.value
    leased_until: datetime | None = None
    #: The announcement as it was when the row was claimed (bulk purposes only).
    version: Version | None = None
    #: Taken over from an engine that is gone (or whose lease ran out).
    lost: bool = False


@dataclass
class Result:
    row: Claimed
    status: DeliveryStatus
    attempts: int
    action: str = DeliveryAction.SEND.value
    message_ref: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


_RETURNED = (
    DELIVERY.c.id, DELIVERY.c.announcement_id, DELIVERY.c.person_id, DELIVERY.c.platform,
    DELIVERY.c.purpose, DELIVERY.c.address, DELIVERY.c.attempts, DELIVERY.c.message_ref,
    DELIVERY.c.action,
)


class Outbox:
    """The database side of delivery: claim due rows, record results."""

    def __init__(self, db: Database, owner: str) -> None:
        self.db = db
        self.owner = owner
        #: Runs with the results, in their transaction (fallback, escalated copies).
        self.after_record: Callable[[Connection, list[Result], datetime], object] | None = None

    def _due(self, platform: str, now: datetime, live: list[str] | None, lost_too: bool
             ) -> list[tuple[Any, tuple[Any, ...]]]:
        """(condition, order) for each class of due rows, in claiming order."""
        c = DELIVERY.c
        mine = c.platform == platform
        pending = and_(mine, c.status == DeliveryStatus.PENDING.value, c.next_attempt_at <= now)
        lost = c.leased_until < now
        if live is not None:
            # Leased before ``now`` by none of the live engines: its engine is gone (an
            # engine that started after the live list was read leased its rows later).
            lost = or_(lost, and_(c.lease_owner != self.owner, c.updated_at <= now,
                                  owner_gone(live)))
        due = [
            (and_(pending, c.priority == 0), (c.next_attempt_at, c.id)),
            (and_(pending, c.priority == 1), (c.next_attempt_at, c.id)),
        ]
        if lost_too:
            due.insert(0, (and_(mine, c.status == DeliveryStatus.SENDING.value, lost),
                           (c.leased_until, c.id)))
        return due

    def claim(self, platform: str, limit: int, now: datetime, lease: timedelta,
              stale_before: datetime | None = None, lost_too: bool = True) -> list[Claimed]:
        """Lease up to ``limit`` due rows; rows of engines without a heartbeat since
        ``stale_before`` count as lost. ``lost_too=False`` looks for pending rows only:
        finding lost rows walks every ``sending`` index entry, the dead ones of rows
        already sent included, so an engine looks for them about once a second."""
        until = now + lease
        found: list[Any] = []
        lost: set[int] = set()
        with self.db.engine.begin() as conn:
            live = None if stale_before is None else live_owners(conn, stale_before)
            for i, (condition, order) in enumerate(self._due(platform, now, live, lost_too)):
                room = limit - len(found)
                if room <= 0:
                    break
                pick = select(DELIVERY.c.id).where(condition).order_by(*order).limit(room)
                if not self.db.is_sqlite:
                    pick = pick.with_for_update(skip_locked=True)
                found += conn.execute(
                    update(DELIVERY)
                    .where(DELIVERY.c.id.in_(pick.scalar_subquery()))
                    .values(status=DeliveryStatus.SENDING.value, leased_until=until,
                            lease_owner=self.owner, attempts=DELIVERY.c.attempts + 1,
                            updated_at=now)
                    .returning(*_RETURNED)
                ).all()
                if lost_too and i == 0:
                    lost = {r.id for r in found}
            bulk = {r.announcement_id for r in found if r.purpose in BULK}
            versions: dict[int, Version] = {}
            if bulk:
                started = conn.execute(
                    update(ANNOUNCEMENT)
                    .where(ANNOUNCEMENT.c.id.in_(bulk),
                           ANNOUNCEMENT.c.status == Status.SCHEDULED.value)
                    .values(status=Status.SENDING.value, sent_at=now, updated_at=now)
                    .returning(ANNOUNCEMENT.c.id)
                ).scalars().all()
                audit_events(conn, now, "sending", started)
                versions = self.versions(conn, bulk)
        rows = [Claimed(r.id, r.announcement_id, r.person_id, r.platform, r.purpose, r.address,
                        r.attempts, r.message_ref, r.action, leased_until=until,
                        version=versions.get(r.announcement_id) if r.purpose in BULK else None,
                        lost=r.id in lost)
                for r in found]
        rows.sort(key=lambda r: r.id)
        return rows

    def versions(self, conn: Connection, ids: Iterable[int], lock: bool = False
                 ) -> dict[int, Version]:
        """Each announcement's ``Version``. ``lock`` waits for a change being committed
        (a recall or an edit) so a result is never checked against a stale one."""
        ids = sorted(set(ids))
        query = select(ANNOUNCEMENT.c.id, ANNOUNCEMENT.c.status, ANNOUNCEMENT.c.closed_at).where(
            ANNOUNCEMENT.c.id.in_(ids))
        if lock and not self.db.is_sqlite:
            query = query.with_for_update(read=True)
        state = conn.execute(query).all()
        edits = dict(conn.execute(
            select(CORRECTION.c.announcement_id, func.count())
            .where(CORRECTION.c.announcement_id.in_(ids), CORRECTION.c.status == "approved")
            .group_by(CORRECTION.c.announcement_id)
        ).tuples().all())
        return {aid: Version(status == Status.RECALLED, closed is not None, edits.get(aid, 0))
                for aid, status, closed in state}

    def record(self, results: Sequence[Result], now: datetime) -> set[int]:
        """Write results; return the announcements whose bulk rows changed.

        Announcements with nothing left to send become ``sent``.
        """
        if not results:
            return set()
        write = (
            update(DELIVERY)
            .where(DELIVERY.c.id == bindparam("b_id"), DELIVERY.c.lease_owner == self.owner,
                   DELIVERY.c.status == DeliveryStatus.SENDING.value)
            .values(
                status=bindparam("b_status"), attempts=bindparam("b_attempts"),
                message_ref=bindparam("b_ref"), error=bindparam("b_error"),
                next_attempt_at=bindparam("b_next"),
                delivered_at=func.coalesce(bindparam("b_delivered"), DELIVERY.c.delivered_at),
                action=bindparam("b_action"), leased_until=None, updated_at=now,
            )
        )
        params = [{
            "b_id": r.row.id, "b_status": r.status.value, "b_attempts": r.attempts,
            "b_ref": r.message_ref, "b_error": r.error[:1000] if r.error else None,
            "b_next": r.next_attempt_at, "b_delivered": r.delivered_at, "b_action": r.action,
        } for r in results]
        bulk = [r for r in results if r.row.version is not None]
        touched = {r.row.announcement_id for r in bulk}
        with self.db.engine.begin() as conn:
            conn.execute(write, params)
            if bulk:
                self._follow_up(conn, bulk, now)
            if self.after_record is not None:
                self.after_record(conn, list(results), now)
            if bulk:
                self._finish(conn, touched, now)
        return touched

    def _follow_up(self, conn: Connection, results: list[Result], now: datetime) -> None:
        """Copies that went out while the announcement changed: delete or update them."""
        current = self.versions(conn, {r.row.announcement_id for r in results}, lock=True)
        again: list[dict[str, Any]] = []
        for r in results:
            then, latest = r.row.version, current.get(r.row.announcement_id)
            if latest is None or latest == then:
                continue
            delivered = r.status == DeliveryStatus.DELIVERED
            if latest.recalled and delivered:
                again.append({"f_id": r.row.id, "f_was": r.status.value,
                              "f_status": DeliveryStatus.PENDING.value,
                              "f_action": DeliveryAction.DELETE.value})
            elif latest.recalled and r.status == DeliveryStatus.PENDING:
                again.append({"f_id": r.row.id, "f_was": r.status.value,
                              "f_status": DeliveryStatus.CANCELLED.value,
                              "f_action": DeliveryAction.SEND.value})
            elif delivered:
                again.append({"f_id": r.row.id, "f_was": r.status.value,
                              "f_status": DeliveryStatus.PENDING.value,
                              "f_action": DeliveryAction.UPDATE.value})
        if again:
            conn.execute(
                update(DELIVERY)
                .where(DELIVERY.c.id == bindparam("f_id"), DELIVERY.c.status == bindparam("f_was"))
                .values(status=bindparam("f_status"), action=bindparam("f_action"), attempts=0,
                        next_attempt_at=now, updated_at=now),
                again,
            )

    def _finish(self, conn: Connection, ids: Iterable[int] | None, now: datetime) -> list[int]:
        """``sending`` -> ``sent`` for announcements with no bulk row left open."""
        stmt = update(ANNOUNCEMENT).where(ANNOUNCEMENT.c.status == Status.SENDING.value,
                                          *[open_row(status).is_(None) for status in OPEN])
        if ids is not None:
            stmt = stmt.where(ANNOUNCEMENT.c.id.in_(sorted(ids)))
        done = list(conn.execute(
            stmt.values(status=Status.SENT.value, updated_at=now).returning(ANNOUNCEMENT.c.id)
        ).scalars())
        audit_events(conn, now, "sent", done)
        return done

    def sweep(self, now: datetime) -> list[int]:
        """Mark ``sent`` what finished without being noticed (two workers finishing
        together, a worker killed after its last write)."""
        with self.db.engine.begin() as conn:
            return self._finish(conn, None, now)

    def release(self, ids: Iterable[int], now: datetime) -> None:
        """Give back rows claimed but not sent (shutdown): due again at once, elsewhere."""
        ids = sorted(set(ids))
        if not ids:
            return
        with self.db.engine.begin() as conn:
            conn.execute(
                update(DELIVERY)
                .where(DELIVERY.c.id.in_(ids), DELIVERY.c.lease_owner == self.owner,
                       DELIVERY.c.status == DeliveryStatus.SENDING.value)
                .values(status=DeliveryStatus.PENDING.value, attempts=DELIVERY.c.attempts - 1,
                        leased_until=None, lease_owner=None, updated_at=now)
            )

    def renew(self, ids: Iterable[int], until: datetime) -> set[int]:
        """Extend the lease of rows still held; return those that are still ours."""
        ids = sorted(set(ids))
        if not ids:
            return set()
        with self.db.engine.begin() as conn:
            return set(conn.execute(
                update(DELIVERY)
                .where(DELIVERY.c.id.in_(ids), DELIVERY.c.lease_owner == self.owner,
                       DELIVERY.c.status == DeliveryStatus.SENDING.value)
                .values(leased_until=until)
                .returning(DELIVERY.c.id)
            ).scalars())


def open_row(status: str) -> Any:
    """SQL: one bulk row of the announcement being updated in ``status``, or NULL.

    Probed from the newest end: during a send the oldest index entries of ``pending``
    and ``sending`` belong to rows already sent (dead versions until a vacuum), so an
    ``EXISTS ... status IN (...)`` walked all of them, growing with the send
    (measured: 13 ms at 60,000 of 100,000 sent on PostgreSQL; this probe 0.1 ms).
    A scalar subquery keeps its ORDER BY; an EXISTS would lose it."""
    c = DELIVERY.c
    return (select(c.action).where(c.announcement_id == ANNOUNCEMENT.c.id,
                               c.purpose == Purpose.ANNOUNCEMENT.value, c.status == status)
            .order_by(c.action.desc()).limit(1).scalar_subquery())


def audit_events(conn: Connection, now: datetime, action: str, ids: Iterable[int]) -> None:
    rows = [{"at": now, "announcement_id": aid, "action": action,
             "detail": '{"by": "delivery engine"}'} for aid in ids]
    if rows:
        conn.execute(insert(AUDIT), rows)
