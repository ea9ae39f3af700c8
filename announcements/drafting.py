"""Drafting: an author's request becomes a draft with a preview, or is refused.

Rules, each enforced here:
- Only authors may draft, and only for an audience their author scopes cover
  entirely.
- Text, poll question and options stay within ``limits.py``; times are in the
  author's zone and never in the past; a poll closes after it opens.
- A recurring send (``every:``, ``remind:``) repeats no more often than the
  configured minimum interval (``CRIER_MIN_INTERVAL``, default 1h), so nobody
  can page the whole company every minute.
- Every draft has a category from ``CRIER_CATEGORIES`` (``announcements.categories``).
- Placeholders in the text are only those of ``announcements.personalize``; the
  preview shows the text as the audience's first member will see it.
- An author with a daily quota stays within it (``announcements.quota``).
- A request that fails any check leaves nothing behind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from announcements import audit, personalize, quota, render
from announcements.audience import Resolved, resolve
from announcements.delivery.escalation import check_escalation
from announcements.domain import Domain
from announcements.errors import CrierError, NotAllowed, concerning
from announcements.limits import (
    MAX_POLL_OPTION_CHARS,
    MAX_POLL_OPTIONS,
    MAX_POLL_QUESTION_CHARS,
    MAX_TEXT_CHARS,
    MAX_TEXT_REASON,
    MIN_POLL_OPTIONS,
)
from announcements.policy import grants_of, may_author, scope_refusal
from announcements.schedules import duration_text, next_fire, shortest_gap
from announcements.timespec import Every, When
from announcements.types import DraftRequest, Kind, Person, Reply, Role, Status
from storage.models import Announcement, PollOption
from storage.models import Person as PersonRow


@dataclass(frozen=True)
class Drafting:
    domain: Domain

    def draft(self, actor: Person, req: DraftRequest) -> Reply:
        """Check everything, then store a draft and show the author its preview."""
        now = self.domain.clock.now()
        with self.domain.db.session() as s:
            grants = grants_of(s, actor.id)
            if not grants.has(Role.AUTHOR):
                raise NotAllowed(
                    "you are not an author, so you cannot draft announcements",
                    "Ask an admin to run `crier roles grant "
                    f"{actor.email} author DEPARTMENT`.",
                )
            _check_text(req)
            with concerning("category"):
                category = self.domain.config.categories.for_draft(req.category, req.kind)
            with concerning("audience"):
                resolved = resolve(s, req.audience)
                if not may_author(grants, resolved.members):
                    raise NotAllowed(*scope_refusal(grants, Role.AUTHOR, resolved.members))
                quota.check(s, actor.id, actor.timezone, resolved.size, now)
            with concerning("at"):
                send_at = _resolve_when(req.at, now, actor.timezone)
            closes_at = _resolve_when(req.closes, now, actor.timezone)
            if closes_at and closes_at <= (send_at or now):
                raise CrierError(
                    "the poll would close before it opens",
                    "Make `closes:` later than `at:` (or than now), e.g. closes:fri 17:00.",
                )
            every = req.every if isinstance(req.every, Every) else None
            nudge = req.nudge if isinstance(req.nudge, Every) else None
            minimum = self.domain.config.min_interval
            if every is not None:
                _check_fires(every, actor.timezone, now)
                _check_often(every, "every", minimum, actor.timezone, now)
            if nudge is not None:
                _check_often(nudge, "remind", minimum, actor.timezone, now)
            options = _check_poll(req) if req.kind == Kind.POLL else []
            escalate = check_escalation(req.escalate, urgent=req.urgent, ack=req.ack)
            ann = Announcement(
                kind=req.kind.value,
                author_id=actor.id,
                text=req.text.strip(),
                audience=str(resolved.spec),
                audience_size=resolved.size,
                ack=req.ack,
                urgent=req.urgent,
                multi=req.multi,
                anonymous=req.anonymous,
                local_time=req.local_time,
                category=category.name,
                send_at=send_at,
                closes_at=closes_at,
                every=every.text if every else None,
                nudge_every=nudge.text if nudge else None,
                escalate_after=escalate,
                status=Status.DRAFT.value,
                created_at=now,
                updated_at=now,
            )
            s.add(ann)
            s.flush()
            assert ann.id is not None
            rows = [PollOption(announcement_id=ann.id, position=i, label=label)
                    for i, label in enumerate(options, start=1)]
            s.add_all(rows)
            audit.record(s, now, "drafted", actor_id=actor.id, announcement_id=ann.id,
                         audience=ann.audience, size=ann.audience_size, category=category.name)
            sample = None
            if personalize.is_personal(ann.text) and (first := _first_member(s, resolved)):
                sample = (first.name, personalize.fill(ann.text, first))
            return Reply(message=render.preview(ann, rows, resolved.breakdown(), actor.timezone,
                                                sample=sample))


def _first_member(s: Session, resolved: Resolved) -> PersonRow | None:
    """The audience member the preview is shown for (the first by name)."""
    ids = resolved.person_ids(s)
    if not ids:
        return None
    return s.execute(select(PersonRow).where(col(PersonRow.id).in_(ids[:1000]))
                     .order_by(col(PersonRow.name)).limit(1)).scalar_one_or_none()


def _check_text(req: DraftRequest) -> None:
    text = req.text.strip()
    if not text:
        raise CrierError("the message is empty", "Write the text after the options.")
    check_length(text, req.kind)


def check_length(text: str, kind: str) -> None:
    """Text within ``MAX_TEXT_CHARS``; a poll question within ``MAX_POLL_QUESTION_CHARS``;
    only known placeholders (also for an edit of what was sent)."""
    personalize.check(text)
    if len(text) > MAX_TEXT_CHARS:
        raise CrierError(
            f"the text is {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,} "
            f"({MAX_TEXT_REASON})",
            "Shorten it, or link to a document with the details.",
        )
    if kind == Kind.POLL and len(text) > MAX_POLL_QUESTION_CHARS:
        raise CrierError(
            f"the question is {len(text)} characters; polls allow {MAX_POLL_QUESTION_CHARS} "
            "(Telegram's limit for poll questions)",
            "Shorten the question; put details in a separate announcement.",
        )


def _check_poll(req: DraftRequest) -> list[str]:
    options = [o for o in req.options if o]
    if len(options) < MIN_POLL_OPTIONS:
        raise CrierError(
            f"a poll needs at least {MIN_POLL_OPTIONS} options; this one has {len(options)}",
            'Quote each option: /poll "Lunch?" "Pizza" "Sushi"',
        )
    if len(options) > MAX_POLL_OPTIONS:
        raise CrierError(
            f"a poll can have at most {MAX_POLL_OPTIONS} options (Telegram's limit); "
            f"this one has {len(options)}",
            "Merge or drop some options.",
        )
    for o in options:
        if len(o) > MAX_POLL_OPTION_CHARS:
            raise CrierError(
                f"the option `{o[:30]}…` is {len(o)} characters; options allow "
                f"{MAX_POLL_OPTION_CHARS} (Slack's limit for button labels)",
                "Shorten the option.",
            )
    dupes = [o for o, n in Counter(o.lower() for o in options).items() if n > 1]
    if dupes:
        raise CrierError(f"the option `{dupes[0]}` is given twice", "Give each option once.")
    return options


def _resolve_when(when: object | None, now: datetime, tz: str) -> datetime | None:
    if when is None:
        return None
    assert isinstance(when, When)
    return when.resolve(now, tz)


def _check_fires(every: Every, tz: str, now: datetime) -> None:
    if every.cron is None:
        return
    if next_fire(every, tz, now) is None:
        raise CrierError(
            f"the schedule `{every.text}` never fires",
            "Check the day and month fields, e.g. `0 9 * * 1` is Mondays at 09:00.",
        )


def _check_often(every: Every, option: str, minimum: timedelta, tz: str, now: datetime) -> None:
    gap = shortest_gap(every, tz, now)
    if gap is not None and gap < minimum:
        least = duration_text(minimum)
        raise CrierError(
            f"`{option}:{every.text}` repeats every {duration_text(gap)}; recurring sends "
            f"may repeat at most once every {least}",
            f"Repeat less often, e.g. `{option}:{least}` or `{option}:mon 09:00`.",
        )
