"""Timed work: recurring reminders, nudges to non-readers, poll reminders and
closing, the weekly report and the daily retention purge.

Jobs live in APScheduler 3's SQLAlchemy job store in Crier's own database and
fire on APScheduler's cron and interval triggers. The firing loop is ours, so
time is injectable (tests drive a ``ManualClock``) and each run is exactly-once:

- A run writes a ``job_run`` row (unique per job and fire time) in the same
  transaction as its effects; a second process or a retry after a crash finds
  the row and does nothing.
- Missed runs (the process was down) are coalesced: one run, for the latest
  fire time that passed, then the job moves to its next future time.
- ``reconcile`` re-creates any job that should exist but does not (a crash
  between an approval and its job being stored loses nothing).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import Select, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from announcements import audit, retention
from announcements.audience import resolve
from announcements.delivery.fanout import enqueue
from announcements.domain import Domain
from announcements.errors import CrierError
from announcements.events import Approved
from announcements.recipients import category_of, recipients, send
from announcements.schedules import trigger as every_trigger
from announcements.timespec import Every, parse_every
from announcements.timing import due_times
from announcements.types import DeliveryAction, DeliveryStatus, Kind, Purpose, Status
from storage.models import Announcement, Delivery, JobRun, Receipt, Vote
from storage.models import Person as PersonRow

log = logging.getLogger("crier.scheduling")
JOB_TABLE = "crier_scheduled_jobs"
REPORT_JOB = "report:weekly"
RETENTION_JOB = "retention:daily"
#: A poll's one reminder goes out this long before it closes (or halfway, if sooner).
POLL_REMINDER_LEAD = timedelta(hours=24)


def run_job(kind: str, target: int) -> None:  # pragma: no cover - a stored reference only
    """Jobs are run by ``Scheduler.tick``, never by an APScheduler executor."""
    raise RuntimeError("Crier jobs are run by Scheduler.tick")


@dataclass(frozen=True)
class ReportPost:
    """A report to post after the run's transaction committed."""

    fire_time: datetime
    late: timedelta


@dataclass
class TickResult:
    ran: list[str] = field(default_factory=list)
    reports: list[ReportPost] = field(default_factory=list)


@dataclass(frozen=True)
class ReportSchedule:
    every: Every
    timezone: str = "UTC"
    #: A report later than this says so in its text.
    grace: timedelta = timedelta(hours=1)


class Scheduler:
    """Owns the job store; ``tick(now)`` runs what is due."""

    def __init__(self, domain: Domain, report: ReportSchedule | None = None,
                 retention_days: int | None = None) -> None:
        self.domain = domain
        self.report = report
        #: ``CRIER_RETENTION_DAYS``; None: no retention job.
        self.retention_days = retention_days
        self.store = SQLAlchemyJobStore(engine=domain.db.engine, tablename=JOB_TABLE)
        # An APScheduler scheduler that is never started: it only gives jobs a home.
        self._aps = BackgroundScheduler(timezone=UTC)
        self.store.start(self._aps, "default")

    # -- registering ---------------------------------------------------------------

    def _put(self, job_id: str, trig: BaseTrigger, kind: str, target: int,
             first: datetime | None) -> None:
        if first is None:
            self._remove(job_id)
            return
        job = Job(
            self._aps, id=job_id, func=f"{__name__}:run_job", trigger=trig,
            executor="default", args=(kind, target), kwargs={}, name=job_id,
            misfire_grace_time=None, coalesce=True, max_instances=1, next_run_time=first,
        )
        try:
            self.store.update_job(job)
        except JobLookupError:
            try:
                self.store.add_job(job)
            except Exception:  # noqa: BLE001 - another process added it meanwhile
                self.store.update_job(job)

    def _remove(self, job_id: str) -> None:
        with contextlib.suppress(JobLookupError):
            self.store.remove_job(job_id)

    def has_job(self, job_id: str) -> bool:
        return self.store.lookup_job(job_id) is not None

    def on_approved(self, event: Approved) -> None:
        """Subscribed to ``Approved`` when the application is built."""
        self.schedule_for(event.announcement_id)

    def schedule_for(self, ann_id: int) -> None:
        """Register the jobs an approved announcement needs."""
        now = self.domain.clock.now()
        with self.domain.db.session() as s:
            ann = s.get(Announcement, ann_id)
            if ann is None:
                return
            self._jobs_for(s, ann, now)

    def _jobs_for(self, s: Session, ann: Announcement, now: datetime) -> None:
        assert ann.id is not None
        author = s.get(PersonRow, ann.author_id)
        tz = author.timezone if author else "UTC"
        if ann.kind == Kind.REMINDER and ann.every and ann.status == Status.SCHEDULED:
            every = _every(ann.every)
            # An interval counts from `at:` (or from approval): `every:24h` first fires a
            # day later; a weekly rule fires at its next slot.
            first_at = ann.send_at or (now + every.interval if every.interval else now)
            trig = every_trigger(every, tz, first_at)
            self._put(f"reminder:{ann.id}", trig, "reminder", ann.id,
                      first_at if every.interval else trig.get_next_fire_time(None, first_at))
        if ann.ack and ann.nudge_every and ann.nudges_sent < self.domain.config.nudge_max:
            every = _every(ann.nudge_every)
            base = ann.send_at or ann.sent_at or now
            trig = every_trigger(every, tz, base)
            first = (base + every.interval) if every.interval else trig.get_next_fire_time(
                None, base)
            self._put(f"nudge:{ann.id}", trig, "nudge", ann.id, first)
        if ann.kind == Kind.POLL and ann.closes_at and ann.closed_at is None:
            start = ann.send_at or ann.sent_at or now
            lead = min(POLL_REMINDER_LEAD, (ann.closes_at - start) / 2)
            remind_at = ann.closes_at - lead
            if remind_at > now:
                self._put(f"pollremind:{ann.id}", DateTrigger(remind_at), "pollremind", ann.id,
                          remind_at)
            self._put(f"pollclose:{ann.id}", DateTrigger(ann.closes_at), "pollclose", ann.id,
                      ann.closes_at)

    def reconcile(self) -> int:
        """Make sure every job that should exist does; return how many were (re)written."""
        now = self.domain.clock.now()
        written = 0
        with self.domain.db.session() as s:
            active = s.execute(
                select(Announcement).where(or_(
                    and_(col(Announcement.kind) == Kind.REMINDER.value,
                         col(Announcement.status) == Status.SCHEDULED.value),
                    and_(col(Announcement.ack).is_(True),
                         col(Announcement.nudge_every).is_not(None),
                         col(Announcement.status).in_([Status.SENDING.value, Status.SENT.value,
                                                       Status.SCHEDULED.value])),
                    and_(col(Announcement.kind) == Kind.POLL.value,
                         col(Announcement.closes_at).is_not(None),
                         col(Announcement.closed_at).is_(None),
                         col(Announcement.status).in_([Status.SENDING.value, Status.SENT.value,
                                                       Status.SCHEDULED.value])),
                ))
            ).scalars().all()
            for ann in active:
                wanted = [f"reminder:{ann.id}", f"nudge:{ann.id}", f"pollclose:{ann.id}"]
                if not any(self.has_job(j) for j in wanted) and not self._finished(s, ann):
                    self._jobs_for(s, ann, now)
                    written += 1
        if self.report and not self.has_job(REPORT_JOB):
            trig = every_trigger(self.report.every, self.report.timezone, now)
            self._put(REPORT_JOB, trig, "report", 0, trig.get_next_fire_time(None, now))
            written += 1
        if self.retention_days and not self.has_job(RETENTION_JOB):
            daily = CronTrigger(**retention.DAILY_AT, timezone=UTC)
            self._put(RETENTION_JOB, daily, "retention", 0, daily.get_next_fire_time(None, now))
            written += 1
        return written

    def _finished(self, s: Session, ann: Announcement) -> bool:
        """Jobs that already ran to their end must not be re-created."""
        done = s.execute(
            select(col(JobRun.id)).where(col(JobRun.job_id).in_(
                [f"pollclose:{ann.id}", f"nudge-final:{ann.id}"])).limit(1)
        ).first()
        return done is not None

    # -- running -------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        return self.store.get_next_run_time()

    def tick(self, now: datetime | None = None) -> TickResult:
        """Run every job due at ``now``, once each (coalescing missed runs)."""
        now = now or self.domain.clock.now()
        result = TickResult()
        for job in self.store.get_due_jobs(now):
            fire_times = job._get_run_times(now)  # every missed time, oldest first
            fire_time = fire_times[-1] if fire_times else job.next_run_time
            kind, target = job.args
            try:
                keep = self._run(job.id, kind, target, fire_time, now, result)
            except CrierError as exc:
                log.warning("job %s could not run: %s", job.id, exc)
                keep = True
            nxt = job.trigger.get_next_fire_time(fire_time, now) if keep else None
            while nxt is not None and nxt <= now:
                nxt = job.trigger.get_next_fire_time(nxt, now)
            if nxt is None:
                self._remove(job.id)
            else:
                job._modify(next_run_time=nxt)
                self.store.update_job(job)
        return result

    def _run(self, job_id: str, kind: str, target: int, fire_time: datetime, now: datetime,
             result: TickResult) -> bool:
        """Run one job inside one transaction with its ``job_run`` row. False: job is done."""
        late = max(timedelta(0), now - fire_time)
        with self.domain.db.session() as s:
            try:
                with s.begin_nested():
                    s.execute(insert(JobRun).values(job_id=job_id, fire_time=fire_time,
                                                    ran_at=now,
                                                    late_seconds=int(late.total_seconds())))
            except IntegrityError:
                log.info("job %s for %s already ran", job_id, fire_time.isoformat())
                return True
            handler = HANDLERS[kind]
            keep = handler(self, s, target, fire_time, now)
            if kind == "report":
                result.reports.append(ReportPost(fire_time, late))
        result.ran.append(job_id)
        return keep


# -- the jobs ----------------------------------------------------------------------

Handler = Callable[[Scheduler, Session, int, datetime, datetime], bool]


def _fire_reminder(sch: Scheduler, s: Session, ann_id: int, fire: datetime, now: datetime) -> bool:
    """One occurrence of a recurring reminder: a child announcement sent to the
    audience as it is now (people who joined since are included)."""
    parent = s.get(Announcement, ann_id)
    if parent is None or parent.status != Status.SCHEDULED:
        return False
    resolved = resolve(s, parent.audience)
    chosen = recipients(s, parent, resolved.person_ids(s), sch.domain.config)
    ids = chosen.ids
    child = Announcement(
        kind=Kind.MESSAGE.value, parent_id=parent.id, author_id=parent.author_id,
        text=parent.text, audience=parent.audience, audience_size=len(ids), urgent=parent.urgent,
        category=category_of(parent), opted_out=chosen.opted_out,
        status=Status.SENDING.value, approved_by_id=parent.approved_by_id, occurrence_at=fire,
        created_at=now, updated_at=now, sent_at=now, send_at=fire,
    )
    s.add(child)
    s.flush()
    assert child.id is not None
    send(s, sch.domain.config, child, ids, now, now)
    audit.record(s, now, "reminder_sent", announcement_id=parent.id, occurrence=child.id,
                 recipients=len(ids))
    return True


def _delivered_except(s: Session, ann_id: int, answered: Select[tuple[int]]) -> list[int]:
    """People the announcement was delivered to who are not in ``answered``."""
    got = select(col(Delivery.person_id)).where(
        col(Delivery.announcement_id) == ann_id,
        col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
        col(Delivery.status) == DeliveryStatus.DELIVERED.value)
    return list(s.execute(got.where(col(Delivery.person_id).not_in(answered))).scalars())


def _non_acknowledgers(s: Session, ann_id: int) -> list[int]:
    return _delivered_except(
        s, ann_id,
        select(col(Receipt.person_id)).where(col(Receipt.announcement_id) == ann_id))


def _non_voters(s: Session, ann_id: int) -> list[int]:
    return _delivered_except(
        s, ann_id, select(col(Vote.person_id)).where(col(Vote.announcement_id) == ann_id))


def _queue_nudges(sch: Scheduler, s: Session, ann: Announcement, people: list[int],
                  now: datetime) -> None:
    """A fresh nudge message to each person who has not opted out since; the one nudge
    row per person is reused."""
    assert ann.id is not None
    people = recipients(s, ann, people, sch.domain.config).ids
    existing = set(s.execute(select(col(Delivery.person_id)).where(
        col(Delivery.announcement_id) == ann.id,
        col(Delivery.purpose) == Purpose.NUDGE.value)).scalars())
    again = [p for p in people if p in existing]
    fresh = [p for p in people if p not in existing]
    due = due_times(s, ann, people, now, sch.domain.config.quiet)
    if again:
        for pid in again:
            s.execute(update(Delivery).where(
                col(Delivery.announcement_id) == ann.id,
                col(Delivery.purpose) == Purpose.NUDGE.value,
                col(Delivery.person_id) == pid,
                col(Delivery.status).in_([DeliveryStatus.DELIVERED.value,
                                          DeliveryStatus.FAILED.value]),
            ).values(status=DeliveryStatus.PENDING.value, action=DeliveryAction.SEND.value,
                     attempts=0, next_attempt_at=due[pid], updated_at=now))
    if fresh:
        enqueue(s, sch.domain.config.channels, ann.id, fresh, Purpose.NUDGE, now, not_before=due)


def _fire_nudge(sch: Scheduler, s: Session, ann_id: int, fire: datetime, now: datetime) -> bool:
    """Nudge only people who got it and have not acknowledged, at most ``nudge_max`` times."""
    ann = s.get(Announcement, ann_id)
    if ann is None or ann.status in (Status.CANCELLED, Status.REJECTED, Status.RECALLED):
        return False
    if ann.nudges_sent >= sch.domain.config.nudge_max:
        return False
    people = _non_acknowledgers(s, ann_id)
    if not people:
        return ann.status != Status.SENT  # everyone acknowledged (or nobody got it yet)
    _queue_nudges(sch, s, ann, people, now)
    ann.nudges_sent += 1
    audit.record(s, now, "nudged", announcement_id=ann_id, people=len(people),
                 nudge=ann.nudges_sent)
    if ann.nudges_sent >= sch.domain.config.nudge_max:
        s.add(JobRun(job_id=f"nudge-final:{ann_id}", fire_time=fire, ran_at=now))
        return False
    return True


def _fire_poll_reminder(sch: Scheduler, s: Session, ann_id: int, fire: datetime,
                        now: datetime) -> bool:
    """One reminder before a poll closes, to people who have not answered (anonymous
    polls too: Crier knows who answered, never shows what)."""
    ann = s.get(Announcement, ann_id)
    if ann is None or ann.closed_at is not None or ann.status == Status.CANCELLED:
        return False
    people = _non_voters(s, ann_id)
    if people:
        _queue_nudges(sch, s, ann, people, now)
        audit.record(s, now, "poll_reminded", announcement_id=ann_id, people=len(people))
    return False


def _fire_poll_close(sch: Scheduler, s: Session, ann_id: int, fire: datetime,
                     now: datetime) -> bool:
    """Close the poll: late clicks are refused, delivered poll messages show the result."""
    ann = s.get(Announcement, ann_id)
    if ann is None or ann.closed_at is not None or ann.status in (Status.CANCELLED,
                                                                  Status.REJECTED):
        return False
    ann.closed_at = now
    s.execute(update(Delivery).where(
        col(Delivery.announcement_id) == ann_id,
        col(Delivery.purpose) == Purpose.ANNOUNCEMENT.value,
        col(Delivery.status) == DeliveryStatus.DELIVERED.value,
    ).values(status=DeliveryStatus.PENDING.value, action=DeliveryAction.UPDATE.value,
             next_attempt_at=now, updated_at=now))
    audit.record(s, now, "poll_closed", announcement_id=ann_id)
    return False


def _fire_report(sch: Scheduler, s: Session, target: int, fire: datetime, now: datetime) -> bool:
    audit.record(s, now, "report_due", fire_time=fire.isoformat())
    return True


HANDLERS: dict[str, Handler] = {
    "reminder": _fire_reminder,
    "nudge": _fire_nudge,
    "pollremind": _fire_poll_reminder,
    "pollclose": _fire_poll_close,
    "report": _fire_report,
    "retention": lambda sch, s, _t, _f, now: retention.job(s, now, sch.retention_days),
}


def _every(text: str) -> Every:
    every = parse_every(text)
    if every is None:
        raise CrierError(f"stored schedule `{text}` cannot be read")
    return every


def describe_jobs(sch: Scheduler) -> list[dict[str, Any]]:
    return [{"id": j.id, "next": j.next_run_time} for j in sch.store.get_all_jobs()]
