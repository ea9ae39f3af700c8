"""Linking a chat account to a directory entry with a one-time code.

Rules, each enforced here:
- A code reaches only the person it names: an admin hands out an invite
  (``crier telegram invite EMAIL``), or the code is sent to the person on a
  platform where they are already linked (Slack, Teams). Nobody can link a
  chat account to someone else's entry by typing their email.
- Only a hash of each code is stored; codes expire (invites after 7 days,
  verification codes after 15 minutes) and are used once.
- Wrong codes are limited: a verification code is void after 5 wrong guesses,
  and an account with 5 wrong codes in an hour must wait. Wrong codes are
  counted in their own table (``link_failure``, by a hash of the account, kept an
  hour), not in the audit log.
- Audit events name the person by id and the platform, never the chat account.
- A chat account belongs to one person; linking again replaces the person's
  previous account on that platform.
- A platform that verifies its members' emails (Slack) links a newcomer by
  email on first contact, never taking over an existing link.

Nothing here knows a chat platform: ``platform`` names it, and the adapters
(Telegram today, any platform without a company directory tomorrow) keep only
their wording and transport.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from announcements import audit
from announcements.clock import Clock
from announcements.errors import CrierError, NotFound
from announcements.lifecycle import to_person
from announcements.types import Person
from storage.db import Database
from storage.models import Identity, LinkCode, LinkFailure
from storage.models import Person as PersonRow

INVITE_TTL = timedelta(days=7)
VERIFY_TTL = timedelta(minutes=15)
MAX_WRONG_CODES = 5
MAX_CODE_REQUESTS = 3
WINDOW = timedelta(hours=1)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: Invite codes travel in a ``t.me/<bot>?start=<code>`` link: [A-Za-z0-9_-], at most 64.
INVITE_CODE = re.compile(r"[A-Za-z0-9_-]{16,64}")
VERIFY_CODE = re.compile(r"\d{6}")


def hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


@dataclass(frozen=True)
class Issued:
    person: Person
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class Linked:
    person: Person
    replaced: str | None = None  # the account that was linked before, if any
    already: bool = False


def _person(s: Session, email: str) -> PersonRow | None:
    row = s.execute(
        select(PersonRow).where(col(PersonRow.email) == email.strip().lower())
    ).scalar_one_or_none()
    return row if row is not None and row.active else None


def create_invite(db: Database, clock: Clock, email: str, platform: str) -> Issued:
    """An admin's invite for ``email``: a code for a deep link, valid for 7 days."""
    now = clock.now()
    with db.session() as s:
        row = _person(s, email)
        if row is None or row.id is None:
            raise NotFound(f"{email} is not in the directory (or is inactive)",
                           "Add them first: `crier directory import FILE.csv`.")
        code = secrets.token_urlsafe(18)  # 24 characters, 144 bits
        s.add(LinkCode(code_hash=hash_code(code), person_id=row.id, platform=platform,
                       purpose="invite", expires_at=now + INVITE_TTL, created_at=now))
        audit.record(s, now, "link_invited", subject_id=row.id, platform=platform)
        return Issued(to_person(row), code, now + INVITE_TTL)


@dataclass(frozen=True)
class CodeRequest:
    person: Person
    code: str
    channels: tuple[tuple[str, str], ...]  # (platform, address) to send the code to


def request_code(db: Database, clock: Clock, platform: str, account: str, email: str,
                 trusted: tuple[str, ...]) -> CodeRequest | None:
    """A verification code for ``email``, to be sent on the person's ``trusted``
    platforms. None when there is nowhere trusted to send it (or no such person):
    the caller says the same either way, so the bot does not reveal who works here."""
    now = clock.now()
    with db.session() as s:
        asked = s.execute(
            select(func.count()).select_from(LinkCode).where(
                col(LinkCode.platform) == platform, col(LinkCode.platform_user_id) == account,
                col(LinkCode.purpose) == "verify", col(LinkCode.created_at) >= now - WINDOW)
        ).scalar_one()
        if asked >= MAX_CODE_REQUESTS:
            raise CrierError("you have asked for several codes in the last hour",
                             "Use the last code you got, or try again in an hour.")
        row = _person(s, email)
        if row is None or row.id is None or not trusted:
            return None
        channels = tuple(s.execute(
            select(Identity.platform, func.coalesce(Identity.address, Identity.platform_user_id))
            .where(col(Identity.person_id) == row.id,
                   col(Identity.platform).in_(trusted))
        ).tuples().all())
        if not channels:
            return None
        code = f"{secrets.randbelow(1_000_000):06d}"
        s.add(LinkCode(code_hash=hash_code(code), person_id=row.id, platform=platform,
                       platform_user_id=account, purpose="verify",
                       expires_at=now + VERIFY_TTL, created_at=now))
        audit.record(s, now, "link_code_sent", subject_id=row.id, platform=platform)
        return CodeRequest(to_person(row), code, channels)


def _failure_key(platform: str, account: str) -> str:
    """A hash of the account: the rate limit needs to recognise it, not to read it."""
    return hashlib.sha256(f"{platform}\0{account}".encode()).hexdigest()


def redeem(db: Database, clock: Clock, platform: str, account: str, address: str,
           code: str) -> Linked:
    """Link ``account`` to the person the code was issued for."""
    now = clock.now()
    key = _failure_key(platform, account)
    with db.session() as s:
        wrong = s.execute(
            select(func.count()).select_from(LinkFailure).where(
                col(LinkFailure.account_key) == key, col(LinkFailure.at) >= now - WINDOW)
        ).scalar_one()
        if wrong >= MAX_WRONG_CODES:
            raise CrierError("too many wrong codes from this account",
                             "Wait an hour, or ask your admin for a new invite link.")
        link = s.execute(
            select(LinkCode).where(
                col(LinkCode.code_hash) == hash_code(code), col(LinkCode.platform) == platform,
                col(LinkCode.used_at).is_(None),
                col(LinkCode.expires_at) > now, col(LinkCode.attempts) < MAX_WRONG_CODES)
        ).scalars().first()
        if link is not None and link.purpose == "verify" and link.platform_user_id != account:
            link = None  # a verification code works only for the account that asked for it
        if link is None:
            _wrong_code(s, platform, account, now)  # committed: the refusal is raised below
        else:
            return _link(s, link, platform, account, address, now)
    left = MAX_WRONG_CODES - wrong - 1
    raise CrierError(
        "that code is not valid (it may be mistyped, used or expired)",
        f"Check it and try again ({left} tries left), or ask your admin for a new "
        "invite link." if left else "Wait an hour, or ask your admin for a new invite.")


def _link(s: Session, link: LinkCode, platform: str, account: str, address: str,
          now: datetime) -> Linked:
    person_row = s.get(PersonRow, link.person_id)
    if person_row is None or not person_row.active:
        raise NotFound("the person this code was for is no longer in the directory")
    mine = s.execute(select(Identity).where(
        col(Identity.platform) == platform, col(Identity.platform_user_id) == account)
    ).scalar_one_or_none()
    if mine is not None and mine.person_id != link.person_id:
        raise CrierError("this account is already linked to someone else's entry",
                         "Send /unlink first if this is your account and the link is wrong.")
    link.used_at = now
    s.execute(update(LinkCode).where(  # other open codes for this link are void now
        col(LinkCode.person_id) == link.person_id, col(LinkCode.platform) == platform,
        col(LinkCode.used_at).is_(None)).values(used_at=now))
    if mine is not None:
        mine.address = address
        return Linked(to_person(person_row), already=True)
    previous = s.execute(select(Identity).where(
        col(Identity.person_id) == link.person_id, col(Identity.platform) == platform)
    ).scalar_one_or_none()
    replaced = previous.platform_user_id if previous else None
    if previous is not None:
        s.delete(previous)
        s.flush()
    s.add(Identity(person_id=link.person_id, platform=platform, platform_user_id=account,
                   address=address, linked_at=now))
    try:
        s.flush()
    except IntegrityError:
        raise CrierError("this account was linked just now by another request",
                         "Send /crier whoami to see the link.") from None
    audit.record(s, now, "linked", actor_id=link.person_id, subject_id=link.person_id,
                 platform=platform, via=link.purpose, replaced_account=replaced is not None)
    return Linked(to_person(person_row), replaced=replaced)


def _wrong_code(s: Session, platform: str, account: str, now: datetime) -> None:
    s.execute(delete(LinkFailure).where(col(LinkFailure.at) < now - WINDOW))  # expired
    s.add(LinkFailure(account_key=_failure_key(platform, account), at=now))
    s.execute(update(LinkCode).where(
        col(LinkCode.platform) == platform, col(LinkCode.platform_user_id) == account,
        col(LinkCode.purpose) == "verify", col(LinkCode.used_at).is_(None),
    ).values(attempts=LinkCode.attempts + 1))


def unlink(db: Database, clock: Clock, platform: str, account: str) -> Person | None:
    """Remove the link of ``account``; the person it was linked to, or None."""
    now = clock.now()
    with db.session() as s:
        row = s.execute(select(Identity).where(
            col(Identity.platform) == platform, col(Identity.platform_user_id) == account)
        ).scalar_one_or_none()
        if row is None:
            return None
        person = s.get(PersonRow, row.person_id)
        s.execute(delete(Identity).where(col(Identity.id) == row.id))
        audit.record(s, now, "unlinked", actor_id=row.person_id, subject_id=row.person_id,
                     platform=platform)
        return to_person(person) if person else None


def link_verified_email(db: Database, clock: Clock, platform: str, email: str,
                        account: str) -> bool:
    """Link ``account`` to the active person with ``email``, for a platform that
    verifies its members' emails (Slack, Microsoft Entra). Nothing changes when
    either is linked already: an admin decides. True when a link was made."""
    now = clock.now()
    with db.session() as s:
        person = _person(s, email)
        if person is None or person.id is None:
            return False
        taken = s.execute(select(Identity).where(
            col(Identity.platform) == platform,
            (col(Identity.person_id) == person.id) | (col(Identity.platform_user_id) == account),
        )).scalars().first()
        if taken is not None:
            return False
        s.add(Identity(person_id=person.id, platform=platform, platform_user_id=account,
                       linked_at=now))
        audit.record(s, now, "linked", actor_id=person.id, subject_id=person.id,
                     platform=platform, via="verified email")
    return True
