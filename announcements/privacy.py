"""Privacy requests: export everything about a person, erase it, or hold it.

Rules, each enforced here:
- An export holds every place ``personal_data.PERSONAL_DATA`` names for the
  person, except which option they chose in an anonymous poll (only that they
  answered).
- An erasure applies each place's rule in one transaction: it deletes what
  identifies the person and pseudonymizes what counts need, so status and report
  figures are the same before and after. Audit rows are not touched (they name
  people by id only; the pseudonymized person row is what they show).
- Copies still waiting to be sent to the person are cancelled ("recipient erased").
- A person under a legal hold cannot be erased until the hold is released; an
  erasure that would remove the last admin is refused.
- Every export, erasure, hold and release is an audit event about the person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlmodel import Session, col, select

from announcements import audit
from announcements.clock import Clock
from announcements.directory.roles import active_admins, keep_an_admin
from announcements.errors import CrierError, NotFound
from announcements.types import DeliveryAction, DeliveryStatus
from storage.db import Database
from storage.models import (
    Announcement,
    AuthorQuota,
    Delivery,
    Identity,
    InboundEvent,
    LegalHold,
    LinkCode,
    OptOut,
    Person,
    PollOption,
    Receipt,
    ReportSubscription,
    RoleGrant,
    Vote,
)

ERASED_DOMAIN = "erased.invalid"


def pseudonym(person_id: int) -> str:
    return f"erased-{person_id}@{ERASED_DOMAIN}"


def _find(s: Session, email: str) -> Person:
    wanted = email.strip().lower()
    row = s.execute(select(Person).where(col(Person.email) == wanted)).scalar_one_or_none()
    if row is None or row.id is None:
        shown = audit.neutralize(email.strip())[:80]
        raise NotFound(f'there is no "{shown}" in the directory',
                       "Check the address; an erased person is listed as erased-ID@"
                       f"{ERASED_DOMAIN}.")
    return row


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# --------------------------------------------------------------------------- export


def export(db: Database, clock: Clock, email: str) -> dict[str, Any]:
    """Everything Crier holds about ``email``, as JSON-ready data."""
    now = clock.now()
    with db.session() as s:
        person = _find(s, email)
        pid = int(person.id or 0)
        data: dict[str, Any] = {
            "exported_at": now.isoformat(),
            "person": {"id": pid, "email": person.email, "name": person.name,
                       "department": person.department, "location": person.location,
                       "title": person.title, "timezone": person.timezone,
                       "active": person.active, "created_at": _iso(person.created_at),
                       "updated_at": _iso(person.updated_at),
                       "erased_at": _iso(person.erased_at)},
            "legal_hold": s.execute(select(LegalHold).where(
                col(LegalHold.person_id) == pid)).first() is not None,
        }
        data.update(_held(s, pid, person.email))
        data["audit_events"] = [
            {"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
             "announcement": e.announcement_id, "subject": e.subject, "detail": e.detail}
            for e in audit.entries(s, audit.Query(person_id=pid))]
        audit.record(s, now, "privacy_exported", subject_id=pid)
    return data


def _held(s: Session, pid: int, email: str) -> dict[str, Any]:
    rows = s.execute(select(Identity).where(col(Identity.person_id) == pid)).scalars()
    identities = [{"platform": i.platform, "account": i.platform_user_id,
                   "address": i.address, "linked_at": _iso(i.linked_at)} for i in rows]
    roles = [{"role": r, "scope": sc} for r, sc in s.execute(
        select(RoleGrant.role, RoleGrant.scope).where(col(RoleGrant.person_id) == pid))]
    deliveries = [{"announcement": d.announcement_id, "platform": d.platform,
                   "purpose": d.purpose, "status": d.status, "created_at": _iso(d.created_at),
                   "delivered_at": _iso(d.delivered_at)}
                  for d in s.execute(select(Delivery).where(col(Delivery.person_id) == pid)
                                     .order_by(col(Delivery.id))).scalars()]
    receipts = [{"announcement": a, "at": _iso(at)} for a, at in s.execute(
        select(Receipt.announcement_id, Receipt.created_at)
        .where(col(Receipt.person_id) == pid).order_by(col(Receipt.id)))]
    votes = []
    for ann_id, anonymous, label, at in s.execute(
            select(Vote.announcement_id, Announcement.anonymous, PollOption.label,
                   Vote.created_at)
            .join(Announcement, col(Announcement.id) == col(Vote.announcement_id))
            .join(PollOption, col(PollOption.id) == col(Vote.option_id))
            .where(col(Vote.person_id) == pid).order_by(col(Vote.id))):
        votes.append({"announcement": ann_id, "answered": True, "at": _iso(at)} if anonymous
                     else {"announcement": ann_id, "option": label, "at": _iso(at)})
    authored = [{"id": a.id, "kind": a.kind, "status": a.status, "audience": a.audience,
                 "text": a.text, "created_at": _iso(a.created_at)}
                for a in s.execute(select(Announcement).where(
                    col(Announcement.author_id) == pid).order_by(col(Announcement.id))).scalars()]
    approved = list(s.execute(select(Announcement.id).where(
        col(Announcement.approved_by_id) == pid).order_by(col(Announcement.id))).scalars())
    opt_outs = list(s.execute(select(OptOut.category).where(col(OptOut.person_id) == pid))
                    .scalars())
    named_in = list(s.execute(select(Announcement.id).where(
        func.lower(col(Announcement.audience)).contains("@" + email.lower()))).scalars())
    subscriptions = [{"platform": p, "channel": c} for p, c in s.execute(
        select(ReportSubscription.platform, ReportSubscription.channel).where(or_(
            col(ReportSubscription.created_by_id) == pid,
            col(ReportSubscription.channel) == email)))]
    return {"identities": identities, "roles": roles, "opt_outs": opt_outs,
            "deliveries": deliveries, "receipts": receipts, "poll_answers": votes,
            "announcements_written": authored, "announcements_approved": approved,
            "named_in_audiences": named_in, "report_subscriptions": subscriptions}


# --------------------------------------------------------------------------- erase


@dataclass(frozen=True)
class Erased:
    person_id: int
    pseudonym: str
    identities: int
    roles: int
    audiences: int

    def summary(self) -> str:
        return (f"Erased person #{self.person_id}: now {self.pseudonym}; "
                f"{self.identities} chat account(s) and {self.roles} role(s) removed, "
                f"{self.audiences} audience(s) rewritten. Counts in status and reports "
                "are unchanged.")


def erase(db: Database, clock: Clock, email: str) -> Erased:
    """Remove or pseudonymize everything about ``email`` (see ``PERSONAL_DATA``)."""
    now = clock.now()
    with db.session() as s:
        person = _find(s, email)
        pid = int(person.id or 0)
        if person.erased_at is not None:
            raise CrierError(f"{person.email} was erased already",
                             "Nothing is left to erase.")
        if s.execute(select(LegalHold).where(col(LegalHold.person_id) == pid)).first():
            raise CrierError(f"{person.email} is under a legal hold: nothing was erased",
                             "When the hold ends, run `crier privacy release EMAIL`, "
                             "then erase again.")
        old, new = person.email, pseudonym(pid)
        admins = active_admins(s)
        accounts = list(s.execute(select(Identity.platform_user_id)
                                  .where(col(Identity.person_id) == pid)).scalars())
        identities = _delete(s, Identity, col(Identity.person_id) == pid)
        roles = _delete(s, RoleGrant, col(RoleGrant.person_id) == pid)
        _delete(s, LinkCode, col(LinkCode.person_id) == pid)
        _delete(s, AuthorQuota, col(AuthorQuota.person_id) == pid)
        for account in {*accounts, old}:
            _delete(s, InboundEvent, col(InboundEvent.event_id).startswith(
                f"click:{account}:", autoescape=True))
        s.execute(update(Delivery).where(col(Delivery.person_id) == pid)
                  .values(address=None, message_ref=None, error=None))
        s.execute(update(Delivery).where(  # nothing more reaches an erased person
            col(Delivery.person_id) == pid, col(Delivery.status) == DeliveryStatus.PENDING.value,
            col(Delivery.action) == DeliveryAction.SEND.value)
            .values(status=DeliveryStatus.CANCELLED.value, error="recipient erased",
                    updated_at=now))
        s.execute(update(ReportSubscription).where(col(ReportSubscription.channel) == old)
                  .values(channel=new))
        audiences = _rewrite_audiences(s, old, new)
        person.email, person.name = new, f"Erased person #{pid}"
        person.location = person.title = None
        person.timezone, person.active = "UTC", False
        person.erased_at = person.updated_at = now
        s.add(person)
        s.flush()
        keep_an_admin(s, admins, "this erasure")
        audit.record(s, now, "privacy_erased", subject_id=pid, identities=identities,
                     roles=roles)
        return Erased(pid, new, identities, roles, audiences)


def _delete(s: Session, model: type[Any], where: Any) -> int:
    result = s.execute(delete(model).where(where), execution_options={
        "synchronize_session": False})
    return int(getattr(result, "rowcount", 0) or 0)


def _rewrite_audiences(s: Session, old: str, new: str) -> int:
    """``@old`` in an audience becomes ``@new`` (any case), so a resend still resolves."""
    rows = s.execute(select(Announcement).where(
        func.lower(col(Announcement.audience)).contains("@" + old, autoescape=True))).scalars()
    count = 0
    for ann in rows:
        ann.audience = _replace_ci(ann.audience, "@" + old, "@" + new)
        s.add(ann)
        count += 1
    return count


def _replace_ci(text: str, old: str, new: str) -> str:
    lower, out, start = text.lower(), [], 0
    while (at := lower.find(old, start)) >= 0:
        out.append(text[start:at] + new)
        start = at + len(old)
    return "".join(out) + text[start:]


# --------------------------------------------------------------------------- legal hold


def hold(db: Database, clock: Clock, email: str) -> str:
    """Put ``email`` under a legal hold: erasure is refused until it is released."""
    now = clock.now()
    with db.session() as s:
        person = _find(s, email)
        pid = int(person.id or 0)
        if s.execute(select(LegalHold).where(col(LegalHold.person_id) == pid)).first():
            return f"{person.email} is already under a legal hold; nothing changed."
        s.add(LegalHold(person_id=pid, created_at=now))
        audit.record(s, now, "legal_hold_set", subject_id=pid)
        return (f"{person.email} is under a legal hold: their data cannot be erased until "
                "`crier privacy release` ends it.")


def release(db: Database, clock: Clock, email: str) -> str:
    now = clock.now()
    with db.session() as s:
        person = _find(s, email)
        pid = int(person.id or 0)
        if _delete(s, LegalHold, col(LegalHold.person_id) == pid) == 0:
            return f"{person.email} is not under a legal hold; nothing changed."
        audit.record(s, now, "legal_hold_released", subject_id=pid)
        return f"The legal hold on {person.email} is released."
