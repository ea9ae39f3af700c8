"""A fake Microsoft Graph (v1.0) on 127.0.0.1 (port 0): users through ``/users/delta``
(pages with ``@odata.nextLink``, a ``@odata.deltaLink`` that later returns only
changes and removals), ``$select`` honoured as Graph does (no department without
it), the Teams app catalog and per-user app installation (409 when installed).
``throttle`` makes the next requests answer 429 with ``Retry-After``. Only tokens
the fake identity issued for Graph's scope are accepted.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer
from tests.fakes.teams_identity import FakeIdentity

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
DEFAULT_FIELDS = ("id", "displayName", "mail", "userPrincipalName")  # what Graph gives unasked


@dataclass
class GraphUser:
    id: str
    displayName: str  # noqa: N815 - Graph's names
    mail: str | None
    userPrincipalName: str  # noqa: N815
    department: str | None = None
    officeLocation: str | None = None  # noqa: N815
    jobTitle: str | None = None  # noqa: N815
    accountEnabled: bool = True  # noqa: N815
    version: int = 0
    deleted: bool = False

    def shown(self, fields: tuple[str, ...]) -> dict[str, Any]:
        return {f: getattr(self, f) for f in fields}


class FakeGraph(ThreadedServer):
    label = "fake Microsoft Graph"

    def __init__(self, identity: FakeIdentity, page_size: int = 3) -> None:
        self.identity = identity
        self.page_size = page_size
        self.users: dict[str, GraphUser] = {}
        self.catalog: dict[str, str] = {}  # externalId -> catalog id
        self.installed: set[tuple[str, str]] = set()  # (user id, catalog id)
        self.requests: list[str] = []
        self.throttled_at: list[float] = []
        self._throttle: list[float] = []
        self._pages: dict[str, tuple[list[dict[str, Any]], int]] = {}
        self._version = itertools.count(1)
        self._now = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1.0"

    # -- the tenant ------------------------------------------------------------------------

    def add(self, user_id: str, email: str, name: str, **fields: Any) -> GraphUser:
        with self._lock:
            self._now = next(self._version)
            user = GraphUser(user_id, name, email, email, version=self._now, **fields)
            self.users[user_id] = user
            return user

    def change(self, user_id: str, **fields: Any) -> None:
        with self._lock:
            self._now = next(self._version)
            user = self.users[user_id]
            for k, v in fields.items():
                setattr(user, k, v)
            user.version = self._now

    def delete(self, user_id: str) -> None:
        self.change(user_id, deleted=True)

    def throttle(self, times: int = 1, retry_after: float = 1) -> None:
        with self._lock:
            self._throttle += [retry_after] * times

    # -- the server ------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1.0/users/delta()", self._delta)
        app.router.add_get("/v1.0/users/delta", self._delta)
        app.router.add_get("/v1.0/appCatalogs/teamsApps", self._apps)
        app.router.add_post("/v1.0/users/{user}/teamwork/installedApps", self._install)

    def _gate(self, request: web.Request) -> web.Response | None:
        with self._lock:
            self.requests.append(str(request.rel_url))
        if not self.identity.valid(request.headers.get("Authorization"), GRAPH_SCOPE):
            return _error(401, "InvalidAuthenticationToken", "Access token is empty.")
        with self._lock:
            if self._throttle:
                wait = self._throttle.pop(0)
                self.throttled_at.append(time.monotonic())
                return _error(429, "TooManyRequests", "Too many requests",
                              {"Retry-After": f"{wait:g}"})
        return None

    async def _delta(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused is not None:
            return refused
        q = request.query
        with self._lock:
            if "$skiptoken" in q:
                items, version = self._pages.pop(q["$skiptoken"], ([], self._now))
            else:
                since = int(q.get("$deltatoken", "0"))
                select = tuple(q["$select"].split(",")) if "$select" in q else DEFAULT_FIELDS
                if since:  # a delta link keeps the fields of the first request
                    select = self._select
                self._select = select
                items = []
                for user in sorted(self.users.values(), key=lambda u: u.version):
                    if user.version <= since:
                        continue
                    if user.deleted:
                        if since:
                            items.append({"id": user.id, "@removed": {"reason": "deleted"}})
                    else:
                        items.append(user.shown(select))
                version = self._now
            page, rest = items[: self.page_size], items[self.page_size:]
            body: dict[str, Any] = {"@odata.context": f"{self.url}/$metadata#users",
                                    "value": page}
            if rest:
                token = f"skip{len(self._pages)}x{version}x{len(rest)}"
                self._pages[token] = (rest, version)
                body["@odata.nextLink"] = f"{self.url}/users/delta()?$skiptoken={token}"
            else:
                body["@odata.deltaLink"] = f"{self.url}/users/delta()?$deltatoken={version}"
        return web.json_response(body)

    _select: tuple[str, ...] = DEFAULT_FIELDS

    async def _apps(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused is not None:
            return refused
        match = re.fullmatch(r"externalId eq '([^']*)'", request.query.get("$filter", ""))
        found = [{"id": self.catalog[match.group(1)], "externalId": match.group(1),
                  "displayName": "Crier", "distributionMethod": "organization"}] \
            if match and match.group(1) in self.catalog else []
        return web.json_response({"value": found})

    async def _install(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused is not None:
            return refused
        body = await request.json()
        bind = str(body.get("teamsApp@odata.bind", ""))
        app_id = bind.rsplit("/", 1)[-1]
        if not bind.startswith(f"{self.url}/appCatalogs/teamsApps/") \
                or app_id not in self.catalog.values():
            return _error(400, "BadRequest", "teamsApp@odata.bind is not an app in the catalog")
        key = request.match_info["user"].lower()
        user = next((u for u in self.users.values()
                     if key in (u.id.lower(), (u.mail or "").lower())), None)
        if user is None:
            return _error(404, "Request_ResourceNotFound", "User not found")
        with self._lock:
            if (user.id, app_id) in self.installed:
                return _error(409, "Conflict", "App is already installed for this user")
            self.installed.add((user.id, app_id))
        return web.json_response({"id": f"inst-{user.id}"}, status=201)


def _error(status: int, code: str, message: str,
           headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers=headers)

