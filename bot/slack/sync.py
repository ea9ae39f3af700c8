"""``crier directory sync slack``: the directory from the Slack workspace.

Rules, each applied once below:
- Members come from ``users.list``, page by page. Bots, Slackbot and guests
  (single- and multi-channel) are skipped; so is anyone without an email.
- People are linked by email (lower case): a known person gets the Slack
  account linked and their details refreshed; an unknown one is added.
  Slack is the authority on Slack accounts: one linked to another person
  (whose email changed) moves to the member's email.
- Deactivated Slack accounts are leavers: their directory person is marked
  inactive (never deleted: receipts and audit keep pointing at them). A sync
  that would deactivate the last admin is refused and writes nothing.
- Department, location and title come from profile fields named in
  ``FieldMap``: a standard profile key (``title``) or a custom field's label
  or id (``Department``, ``Xf01AB2CD3``). An empty value leaves the stored one;
  a new person with no department gets ``FieldMap.default_department``.
  Slack's spelling is taken as it is; a new name that looks like a typo of an
  existing department or location is reported as a warning.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from announcements.clock import Clock
from announcements.directory import PersonRecord, UpsertPolicy, upsert
from announcements.directory.records import MAX_LENGTHS
from announcements.linking import link_verified_email
from storage.db import Database

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
    """Pull the workspace's people into the directory; see the module docstring for rules.

    The directory's own rules (the last admin stays, every change is audited,
    nothing is written when anything is refused) are those of ``upsert.apply``.
    """
    result = SyncResult()
    fields = field_map or FieldMap()
    active, leavers = await _read(client, fields, result)
    records = [_record(m) for m in active] + [
        PersonRecord(email, identities={PLATFORM: user_id}, active=False,
                     origin=f"Slack user {user_id}") for user_id, email in leavers]
    policy = UpsertPolicy(source=PLATFORM, default_department=fields.default_department,
                          owns_platform=PLATFORM, new_departments=True, new_locations=True)
    changes = await db.executor.run(functools.partial(
        upsert.apply, db, records, policy, clock,
        subject="the Slack directory", action="this Slack sync"))
    result.added, result.updated, result.unchanged = (changes.created, changes.updated,
                                                      changes.unchanged)
    result.deactivated, result.linked = changes.deactivated, changes.linked
    result.warnings.extend(changes.notes)
    log.info(result.summary())
    return result


def _record(m: _Member) -> PersonRecord:
    """A member as the directory's neutral record; an empty profile field says nothing."""
    return PersonRecord(
        m.email, name=_fit("name", m.name), department=_fit("department", m.values.get(
            "department")), location=_fit("location", m.values.get("location")),
        title=_fit("title", m.values.get("title")), timezone=m.timezone,
        identities={PLATFORM: m.user_id}, origin=f"Slack user {m.user_id} ({m.email})")


def _fit(column: str, value: str | None) -> str | None:
    """Slack allows longer names than the directory keeps: cut to the column's length."""
    return value[: MAX_LENGTHS[column]] if value else None


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
    return await db.executor.run(link_verified_email, db, clock, PLATFORM, email, user_id)
