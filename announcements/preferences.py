"""Opting out of (and back into) optional categories, and seeing one's choices.

Rules, each enforced here:
- Anyone may opt out of an optional category (``/crier optout social``) and back in
  (``/crier optin social``); a mandatory category cannot be opted out of, and the
  refusal says so. An unknown category is refused with the list.
- An opt-out applies to every send released after it (``recipients.recipients``)
  and to copies of the category already queued for the person but not yet sent
  (scheduled, held by working hours or the daily cap): they are cancelled and
  counted as opted out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session, col

from announcements import audit
from announcements.domain import Domain
from announcements.errors import CrierError
from announcements.types import DeliveryAction, DeliveryStatus, Person, Purpose, Reply
from storage.models import Announcement, Delivery, OptOut


def opted_out_of(s: Session, person_id: int) -> set[str]:
    """The categories ``person_id`` opted out of."""
    return set(s.execute(select(col(OptOut.category))
                         .where(col(OptOut.person_id) == person_id)).scalars())


def _cancel_queued(s: Session, person_id: int, category: str, now: datetime) -> None:
    """Cancel the person's unsent copies (and nudges) of ``category``; count them."""
    queued = s.execute(
        select(col(Delivery.id), col(Delivery.announcement_id), col(Delivery.purpose))
        .join(Announcement, col(Announcement.id) == col(Delivery.announcement_id))
        .where(col(Delivery.person_id) == person_id,
               col(Delivery.status) == DeliveryStatus.PENDING.value,
               col(Delivery.action) == DeliveryAction.SEND.value,
               col(Delivery.purpose).in_([Purpose.ANNOUNCEMENT.value, Purpose.NUDGE.value]),
               col(Announcement.category) == category)
    ).tuples().all()
    if not queued:
        return
    s.execute(update(Delivery).where(col(Delivery.id).in_([i for i, _, _ in queued]))
              .values(status=DeliveryStatus.CANCELLED.value, error="opted out",
                      updated_at=now))
    firsts = [a for _, a, purpose in queued if purpose == Purpose.ANNOUNCEMENT]
    if firsts:
        s.execute(update(Announcement).where(col(Announcement.id).in_(firsts))
                  .values(opted_out=col(Announcement.opted_out) + 1))


@dataclass(frozen=True)
class Preferences:
    domain: Domain

    def optout(self, actor: Person, category: str, out: bool = True) -> Reply:
        now = self.domain.clock.now()
        categories = self.domain.config.categories
        cat = categories.get(category)
        if cat.mandatory and not out:
            return Reply.text(f"`{cat.name}` is mandatory: you already receive it, as "
                              "everyone does.")
        if cat.mandatory:
            optional = ", ".join(sorted(categories.optional)) or "none"
            raise CrierError(
                f"`{cat.name}` is mandatory: everyone receives it, so you cannot opt out of it",
                f"You can opt out of the optional categories: {optional}. "
                "See `/crier preferences`.",
            )
        with self.domain.db.session() as s:
            row = s.execute(select(OptOut).where(col(OptOut.person_id) == actor.id,
                                                 col(OptOut.category) == cat.name)
                            ).scalar_one_or_none()
            if out and row is None:
                s.add(OptOut(person_id=actor.id, category=cat.name, created_at=now))
                _cancel_queued(s, actor.id, cat.name, now)
            elif not out and row is not None:
                s.delete(row)
            audit.record(s, now, "opted_out" if out else "opted_in", actor_id=actor.id,
                         category=cat.name)
        verb = "no longer receive" if out else "receive"
        undo = "optin" if out else "optout"
        return Reply.text(f"You will {verb} {cat.name} messages. (`/crier {undo} {cat.name}` "
                          "undoes this; `/crier preferences` lists all categories.)")

    def show(self, actor: Person) -> Reply:
        """Each category, mandatory or optional, and whether ``actor`` receives it."""
        with self.domain.db.session() as s:
            out = opted_out_of(s, actor.id)
        lines = ["Your message categories:"]
        for c in self.domain.config.categories.all:
            if c.mandatory:
                lines.append(f"  {c.name}: mandatory — always received")
            elif c.name in out:
                lines.append(f"  {c.name}: optional — opted out (`/crier optin {c.name}`)")
            else:
                lines.append(f"  {c.name}: optional — received (`/crier optout {c.name}`)")
        return Reply.text("\n".join(lines))
