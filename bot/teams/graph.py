"""Microsoft Graph for Teams, through msgraph-sdk pointed at ``TEAMS_GRAPH_URL``:
the directory (``crier directory sync teams``) and installing the app for people
(``crier teams install-for``).

Directory rules, each applied once here (the directory service applies the rest):
- Users are read from ``/users/delta`` with ``$select`` of ``FIELDS`` (Graph returns
  no department without it), every page through ``@odata.nextLink``. The final
  ``@odata.deltaLink`` is stored (``SyncCursor``); the next run starts from it and
  reads only what changed.
- People are linked by email (``mail``, else ``userPrincipalName``, lower case);
  the Teams account is the user's Entra object id. Guests (``#EXT#``) and users
  without an address are skipped.
- A disabled account (``accountEnabled`` false) or a deleted user (``@removed``)
  is a leaver: the directory service marks them inactive, and refuses a sync
  that would leave no active admin.
- A 429 from Graph is waited out for its ``Retry-After`` (msgraph's retry
  middleware); when Graph still refuses, the sync stops with one line and
  writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.user import User
from msgraph.generated.models.user_scope_teams_app_installation import (
    UserScopeTeamsAppInstallation,
)
from msgraph_core import GraphClientFactory
from sqlmodel import col, select

from announcements.clock import Clock
from announcements.directory import PersonRecord, UpsertPolicy, upsert
from announcements.directory.records import MAX_LENGTHS, ImportResult
from announcements.errors import CrierError
from bot.settings import Settings
from bot.teams.tokens import GRAPH_SCOPE, TokenProvider
from storage.db import Database
from storage.models import Identity, SyncCursor
from storage.models import Person as PersonRow

log = logging.getLogger("crier.teams.graph")

PLATFORM = "teams"
CURSOR = "teams-graph"
FIELDS = ["id", "displayName", "mail", "userPrincipalName", "department", "officeLocation",
          "jobTitle", "accountEnabled"]
DEFAULT_DEPARTMENT = "Unassigned"


class _Tokens(AccessTokenProvider):
    """Crier's token provider as msgraph's: client credentials for Graph's scope."""

    def __init__(self, tokens: TokenProvider, host: str) -> None:
        self.tokens = tokens
        self.hosts = AllowedHostsValidator([host])

    async def get_authorization_token(self, uri: str,
                                      additional_authentication_context: Any = None) -> str:
        return await self.tokens.token(GRAPH_SCOPE)

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self.hosts


def client(settings: Settings, http: httpx.AsyncClient) -> GraphServiceClient:
    """A GraphServiceClient whose requests go to ``TEAMS_GRAPH_URL``."""
    if not settings.teams_enabled:
        raise CrierError("Teams is not configured",
                         "Set TEAMS_APP_ID, TEAMS_APP_PASSWORD and TEAMS_TENANT_ID.")
    assert settings.teams_app_id and settings.teams_app_password
    tokens = TokenProvider(settings.teams_token_endpoint, settings.teams_app_id,
                           settings.teams_app_password, http)
    base = settings.teams_graph_url.rstrip("/")
    auth = BaseBearerTokenAuthenticationProvider(_Tokens(tokens, urlsplit(base).hostname or ""))
    graph_http = GraphClientFactory.create_with_default_middleware(client=http)
    adapter = GraphRequestAdapter(auth, graph_http)
    adapter.base_url = base
    return GraphServiceClient(request_adapter=adapter)


def graph_error(exc: APIError, doing: str) -> CrierError:
    status = exc.response_status_code
    if status == 429:
        return CrierError(f"Microsoft Graph kept answering 429 (throttled) while {doing}",
                          "Wait a few minutes and run it again; nothing was changed.")
    if status in (401, 403):
        return CrierError(f"Microsoft Graph refused {doing} ({status})",
                          "Grant the app User.Read.All and TeamsAppInstallation."
                          "ReadWriteForUser.All (application permissions, admin consent).")
    return CrierError(f"Microsoft Graph answered {status} while {doing}",
                      "Check TEAMS_GRAPH_URL and try again.")


# -- the directory ------------------------------------------------------------------------


@dataclass
class Read:
    users: list[User]
    delta_link: str | None
    incremental: bool


async def read_users(graph: GraphServiceClient, delta_link: str | None) -> Read:
    """Every user (or, from ``delta_link``, every change), all pages."""
    from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder

    users: list[User] = []
    if delta_link:
        page = await graph.users.delta.with_url(delta_link).get()
    else:
        query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=FIELDS)
        page = await graph.users.delta.get(
            request_configuration=RequestConfiguration(query_parameters=query))
    while page is not None:
        users += page.value or []
        if page.odata_next_link:
            page = await graph.users.delta.with_url(page.odata_next_link).get()
            continue
        return Read(users, page.odata_delta_link, delta_link is not None)
    return Read(users, None, delta_link is not None)


def record(user: User) -> PersonRecord | None:
    """A Graph user as the directory's neutral record; None for guests and users
    without an address."""
    removed = (user.additional_data or {}).get("@removed")
    email = (user.mail or user.user_principal_name or "").strip().lower()
    if "#ext#" in email:
        return None
    if removed is not None or user.account_enabled is False:
        if not user.id:
            return None
        return PersonRecord(email, identities={PLATFORM: user.id}, active=False,
                            origin=f"Graph user {user.id}")
    if not email or not user.id:
        return None
    return PersonRecord(
        email, name=_fit("name", user.display_name), department=_fit("department",
                                                                     user.department),
        location=_fit("location", user.office_location), title=_fit("title", user.job_title),
        identities={PLATFORM: user.id}, origin=f"Graph user {user.id} ({email})")


def _fit(column: str, value: str | None) -> str | None:
    return value.strip()[: MAX_LENGTHS[column]] if value and value.strip() else None


def stored_link(db: Database) -> str | None:
    with db.session() as s:
        row = s.get(SyncCursor, CURSOR)
        return row.cursor if row else None


def store_link(db: Database, clock: Clock, link: str) -> None:
    with db.session() as s:
        row = s.get(SyncCursor, CURSOR)
        if row is None:
            s.add(SyncCursor(source=CURSOR, cursor=link, updated_at=clock.now()))
        else:
            row.cursor, row.updated_at = link, clock.now()


def apply(db: Database, clock: Clock, users: Iterable[User]) -> ImportResult:
    records = [r for r in (record(u) for u in users) if r is not None]
    policy = UpsertPolicy(source="teams", default_department=DEFAULT_DEPARTMENT,
                          owns_platform=PLATFORM, new_departments=True, new_locations=True)
    return upsert.apply(db, records, policy, clock, subject="the Microsoft Graph directory",
                        action="this Teams sync")


async def sync(settings: Settings, db: Database, clock: Clock, *, full: bool = False
               ) -> tuple[ImportResult, bool]:
    """Make the directory agree with Graph; (what changed, whether it was incremental)."""
    async with httpx.AsyncClient(timeout=60) as http:
        graph = client(settings, http)
        link = None if full else stored_link(db)
        try:
            read = await read_users(graph, link)
        except APIError as exc:
            raise graph_error(exc, "reading users") from None
    result = apply(db, clock, read.users)
    if read.delta_link:
        store_link(db, clock, read.delta_link)
    return result, read.incremental


# -- installing the app -----------------------------------------------------------------


@dataclass
class Installed:
    installed: list[str]
    already: list[str]
    failed: list[str]


def uninstalled(db: Database, emails: list[str] | None) -> list[tuple[str, str]]:
    """(email, Graph user id or email) of active people without a conversation
    reference: the given ``emails``, or everyone."""
    with db.session() as s:
        query = select(col(PersonRow.email), col(Identity.platform_user_id),
                       col(Identity.address)).outerjoin(
            Identity, (col(Identity.person_id) == col(PersonRow.id))
            & (col(Identity.platform) == PLATFORM)).where(col(PersonRow.active).is_(True))
        if emails is not None:
            query = query.where(col(PersonRow.email).in_([e.lower() for e in emails]))
        rows = s.execute(query.order_by(col(PersonRow.email))).tuples().all()
    return [(email, user or email) for email, user, address in rows
            if not (address or "").startswith("{")]


async def install_for(settings: Settings, db: Database, emails: list[str] | None) -> Installed:
    """Install the app for people who cannot be reached yet (409: already installed)."""
    from msgraph.generated.app_catalogs.teams_apps.teams_apps_request_builder import (
        TeamsAppsRequestBuilder,
    )

    targets = uninstalled(db, emails)
    if emails is not None:
        missing = sorted({e.lower() for e in emails} - {t[0] for t in targets})
        if missing and not targets:
            raise CrierError(f"{', '.join(missing)}: not an active person without Crier in "
                             "Teams", "Check the address with `crier directory list`; someone "
                             "who already gets Crier in Teams needs nothing.")
    done = Installed([], [], [])
    async with httpx.AsyncClient(timeout=60) as http:
        graph = client(settings, http)
        query = TeamsAppsRequestBuilder.TeamsAppsRequestBuilderGetQueryParameters(
            filter=f"externalId eq '{settings.teams_app_id}'")
        try:
            apps = await graph.app_catalogs.teams_apps.get(
                request_configuration=RequestConfiguration(query_parameters=query))
        except APIError as exc:
            raise graph_error(exc, "looking up the app in the catalog") from None
        found = apps.value if apps and apps.value else []
        if not found or not found[0].id:
            raise CrierError("the Crier app is not in your organisation's Teams app catalog",
                             "Upload the zip from `crier teams package` in the Teams admin "
                             "center (Manage apps → Upload), then run this again.")
        bind = f"{settings.teams_graph_url.rstrip('/')}/appCatalogs/teamsApps/{found[0].id}"
        for email, user in targets:
            body = UserScopeTeamsAppInstallation(additional_data={"teamsApp@odata.bind": bind})
            try:
                await graph.users.by_user_id(user).teamwork.installed_apps.post(body)
                done.installed.append(email)
            except APIError as exc:
                if exc.response_status_code == 409:
                    done.already.append(email)
                else:
                    log.warning("installing for %s: Graph answered %s", email,
                                exc.response_status_code)
                    done.failed.append(f"{email} ({exc.response_status_code})")
    return done
