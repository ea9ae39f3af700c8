"""``crier directory sync slack``: the directory from the Slack workspace.

Rules, each applied once below:
- Members come from ``users.list``, page by page. Bots, Slackbot and guests
  (single- and multi-channel) are skipped; so is anyone without an email.
- People are linked by email (lower case): a known person gets the Slack
  account linked and their details refreshed; an unknown one is added.
- Deactivated Slack accounts are leavers: their directory person is marked
  inactive (never deleted: receipts and audit keep pointing at them).
- Department, location and title come from profile fields named in
  ``FieldMap``: a standard profile key (``title``) or a custom field's label
  or id (``Department``, ``Xf01AB2CD3``). An empty value leaves the stored one;
  a new person with no department gets ``FieldMap.default_department``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select
from sqlmodel import col

from announcements.clock import Clock
from storage.db import Database
from storage.models import Identity, Person

log = logging.getLogger("crier.slack.sync")

PLATFORM = "slack"
PAGE_SIZE = 200  # users.list: Slack recommends no more than 200 per page
#: Keys of a user's ``profile`` in ``users.list``; anything else is a custom field.
STANDARD_FIELDS = frozenset({
    "title", "phone", "pronouns", "real_name", "display_name", "first_name", "last_name",
    "skype", "status_text",
})
ENV_FIELDS = {
    "department": "CRIER_SLACK_DEPARTMENT_FIELD",
    "location": "CRIER_SLACK_LOCATION_FIELD",
    "title": "CRIER_SLACK_TITLE_FIELD",
}
_LENGTHS = {name: Person.__table__.c[name].type.length  # type: ignore[attr-defined]
            for name in ("name", "department", "location", "title")}


@dataclass(frozen=True)
class FieldMap:
    """Which Slack profile field holds each directory column (None: not synced)."""

    department: str | None = "Department"
    location: str | None = "Location"
    title: str | None = "title"
    default_department: str = "Unassigned"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FieldMap:
        """From ``CRIER_SLACK_DEPARTMENT_FIELD`` etc.; an empty value turns a column off."""
        values: dict[str, Any] = {}
        for column, var in ENV_FIELDS.items():
            if var in env:
                values[column] = env[var].strip() or None
        if env.get("CRIER_SLACK_DEFAULT_DEPARTMENT", "").strip():
            values["default_department"] = env["CRIER_SLACK_DEFAULT_DEPARTMENT"].strip()
        return cls(**values)

    def columns(self) -> dict[str, str]:
        return {c: spec for c in ENV_FIELDS if (spec := getattr(self, c))}


@dataclass
class SyncResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    linked: int = 0
    skipped_bots: int = 0
    skipped_guests: int = 0
    skipped_no_email: int = 0
    pages: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"Slack directory sync: {self.added} added, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.deactivated} marked inactive (left Slack), "
            f"{self.linked} Slack accounts linked.",
            f"Skipped {self.skipped_bots} bots, {self.skipped_guests} guests and "
            f"{self.skipped_no_email} accounts without an email ({self.pages} pages read).",
        ]
        return "\n".join(lines + [f"Warning: {w}" for w in self.warnings])


@dataclass
class _Member:
    user_id: str
    email: str
    name: str
    timezone: str | None
    values: dict[str, str]


async def users(client: AsyncWebClient, result: SyncResult) -> AsyncIterator[dict[str, Any]]:
    """Every member of the workspace, following ``response_metadata.next_cursor``."""
    cursor: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": PAGE_SIZE}
        if cursor:
            kwargs["cursor"] = cursor
        page = await client.users_list(**kwargs)
        result.pages += 1
        for member in page.get("members") or []:
            yield member
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return


async def _custom_ids(client: AsyncWebClient, specs: dict[str, str],
                      result: SyncResult) -> dict[str, str]:
    """column -> custom field id, from the workspace's field labels (team.profile.get)."""
    custom = {c: s for c, s in specs.items() if s not in STANDARD_FIELDS}
    if not custom:
        return {}
    try:
        profile: dict[str, Any] = (await client.team_profile_get()).get("profile") or {}
        fields: list[dict[str, Any]] = profile.get("fields") or []
    except SlackApiError as exc:
        result.warnings.append(
            f"cannot read the workspace's profile fields ({exc.response.get('error')}); "
            f"{', '.join(custom)} not synced. The app needs the users.profile:read scope.")
        return {}
    by_label = {str(f.get("label", "")).lower(): f["id"] for f in fields if f.get("id")}
    ids = {f["id"] for f in fields if f.get("id")}
    found: dict[str, str] = {}
    for column, spec in custom.items():
        if spec in ids:
            found[column] = spec
        elif spec.lower() in by_label:
            found[column] = by_label[spec.lower()]
        else:
            known = ", ".join(sorted(str(f.get("label")) for f in fields)) or "none"
            result.warnings.append(
                f"no Slack profile field `{spec}` for {column} (set {ENV_FIELDS[column]}; "
                f"fields in this workspace: {known})")
    return found


async def _read(client: AsyncWebClient, field_map: FieldMap,
                result: SyncResult) -> tuple[list[_Member], list[tuple[str, str]]]:
    specs = field_map.columns()
    custom = await _custom_ids(client, specs, result)
    active: list[_Member] = []
    leavers: list[tuple[str, str]] = []
    async for user in users(client, result):
        profile = user.get("profile") or {}
        if user.get("is_bot") or user.get("is_app_user") or user.get("id") == "USLACKBOT":
            result.skipped_bots += 1
            continue
        email = str(profile.get("email") or "").strip().lower()
        if user.get("deleted"):
            leavers.append((str(user["id"]), email))
            continue
        if user.get("is_restricted") or user.get("is_ultra_restricted"):
            result.skipped_guests += 1
            continue
        if not email:
            result.skipped_no_email += 1
            continue
        values = {c: str(profile.get(s) or "").strip() for c, s in specs.items()
                  if s in STANDARD_FIELDS}
        if custom:
            extra = (await client.users_profile_get(user=user["id"])).get("profile") or {}
            for column, field_id in custom.items():
                entry = (extra.get("fields") or {}).get(field_id) or {}
                values[column] = str(entry.get("value") or "").strip()
        name = (profile.get("real_name") or user.get("real_name") or profile.get("display_name")
                or user.get("name") or email)
        active.append(_Member(str(user["id"]), email, str(name).strip(),
                              _zone(user.get("tz")), {k: v for k, v in values.items() if v}))
    return active, leavers


def _zone(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


async def sync_directory(
    db: Database, client: AsyncWebClient, clock: Clock, field_map: FieldMap | None = None
) -> SyncResult:
    """Pull the workspace's people into the directory; see the module docstring for rules."""
    result = SyncResult()
    active, leavers = await _read(client, field_map or FieldMap(), result)
    _write(db, clock, active, leavers, field_map or FieldMap(), result)
    log.info(result.summary())
    return result


def _write(db: Database, clock: Clock, active: list[_Member], leavers: list[tuple[str, str]],
           field_map: FieldMap, result: SyncResult) -> None:
    now = clock.now()
    with db.session() as s:
        people = {p.email.lower(): p for p in s.execute(select(Person)).scalars()}
        links = list(s.execute(select(Identity).where(col(Identity.platform) == PLATFORM))
                     .scalars())
        by_person = {i.person_id: i for i in links}
        by_user = {i.platform_user_id: i for i in links}
        for m in active:
            person = people.get(m.email)
            if person is None:
                person = Person(email=m.email, name=_fit("name", m.name),
                                department=_fit("department", m.values.get(
                                    "department", field_map.default_department)),
                                location=_fit("location", m.values.get("location")),
                                title=_fit("title", m.values.get("title")),
                                timezone=m.timezone or "UTC", active=True,
                                created_at=now, updated_at=now)
                s.add(person)
                s.flush()
                people[m.email] = person
                result.added += 1
            elif _refresh(person, m, now):
                result.updated += 1
            else:
                result.unchanged += 1
            assert person.id is not None
            if _link(s, person.id, m.user_id, by_person, by_user, now):
                result.linked += 1
        for user_id, email in leavers:
            link = by_user.get(user_id)
            person = people.get(email) if email else None
            if person is None and link is not None:
                person = s.get(Person, link.person_id)
            if person is not None and person.active:
                person.active = False
                person.updated_at = now
                result.deactivated += 1


def _fit(column: str, value: str | None) -> Any:
    return value[: _LENGTHS[column]] if value else value


def _refresh(person: Person, m: _Member, now: Any) -> bool:
    wanted: dict[str, Any] = {"name": _fit("name", m.name), "active": True}
    for column in ("department", "location", "title"):
        if m.values.get(column):
            wanted[column] = _fit(column, m.values[column])
    if m.timezone:
        wanted["timezone"] = m.timezone
    changed = False
    for column, value in wanted.items():
        if getattr(person, column) != value:
            setattr(person, column, value)
            changed = True
    if changed:
        person.updated_at = now
    return changed


def _link(s: Any, person_id: int, user_id: str, by_person: dict[int, Identity],
          by_user: dict[str, Identity], now: Any) -> bool:
    """Make ``user_id`` the person's Slack account; True when that changed anything."""
    mine = by_person.get(person_id)
    if mine is not None and mine.platform_user_id == user_id:
        return False
    other = by_user.get(user_id)
    if other is not None:  # the account was linked to someone else (an email changed)
        s.delete(other)
        s.flush()
        by_person.pop(other.person_id, None)
    if mine is not None:
        by_user.pop(mine.platform_user_id, None)
        mine.platform_user_id, mine.address, mine.linked_at = user_id, None, now
    else:
        mine = Identity(person_id=person_id, platform=PLATFORM, platform_user_id=user_id,
                        linked_at=now)
        s.add(mine)
    s.flush()
    by_person[person_id] = mine
    by_user[user_id] = mine
    return True


async def link_by_email(db: Database, client: AsyncWebClient, user_id: str, clock: Clock) -> bool:
    """Link a Slack user Crier does not know yet to the directory person with their email.

    Slack verifies members' emails, so the address on the profile identifies
    them. True when a link was made.
    """
    try:
        info = await client.users_info(user=user_id)
    except SlackApiError:
        return False
    user = info.get("user") or {}
    email = str((user.get("profile") or {}).get("email") or "").strip().lower()
    if not email or user.get("deleted") or user.get("is_bot") or user.get("is_restricted") \
            or user.get("is_ultra_restricted"):
        return False
    return await asyncio.to_thread(_link_email, db, email, user_id, clock)


def _link_email(db: Database, email: str, user_id: str, clock: Clock) -> bool:
    with db.session() as s:
        person = s.execute(select(Person).where(
            func.lower(col(Person.email)) == email, col(Person.active).is_(True))
        ).scalar_one_or_none()
        if person is None or person.id is None:
            return False
        taken = s.execute(select(Identity).where(
            col(Identity.platform) == PLATFORM,
            (col(Identity.person_id) == person.id) | (col(Identity.platform_user_id) == user_id),
        )).scalars().first()
        if taken is not None:
            return False  # linked to another account already: an admin decides
        s.add(Identity(person_id=person.id, platform=PLATFORM, platform_user_id=user_id,
                       linked_at=clock.now()))
    return True
