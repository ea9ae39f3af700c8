"""Drafting: an author's request becomes a draft with a preview, or is refused.

Rules, each enforced here:
- Only authors may draft, and only for an audience their author scopes cover
  entirely.
- Text, poll question and options stay within ``limits.py``; times are in the
  author's zone and never in the past; a poll closes after it opens.
- A recurring send (``every:``, ``remind:``) repeats no more often than the
  configured minimum interval (``CRIER_MIN_INTERVAL``, default 1h), so nobody
  can page the whole company every minute.
- A request that fails any check leaves nothing behind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from announcements import audit, render
from announcements.audience import resolve
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
            with concerning("audience"):
                resolved = resolve(s, req.audience)
                if not may_author(grants, resolved.members):
                    raise NotAllowed(*scope_refusal(grants, Role.AUTHOR, resolved.members))
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
                         audience=ann.audience, size=ann.audience_size)
            return Reply(message=render.preview(ann, rows, resolved.breakdown(), actor.timezone))


def _check_text(req: DraftRequest) -> None:
    text = req.text.strip()
    if not text:
        raise CrierError("the message is empty", "Write the text after the options.")
    check_length(text, req.kind)


def check_length(text: str, kind: str) -> None:
    """Text within ``MAX_TEXT_CHARS``; a poll question within ``MAX_POLL_QUESTION_CHARS``
    (also for an edit of what was sent)."""
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
