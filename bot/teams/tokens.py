"""Access tokens for Crier's own calls to Microsoft: client credentials posted to
``TEAMS_TOKEN_URL``, one token per scope, reused until five minutes before it
expires.

Scopes: ``BOT_SCOPE`` for the Bot Framework connector (sending), ``GRAPH_SCOPE``
for Microsoft Graph (directory sync, installing the app). A refusal of the app's
credentials (a wrong ``TEAMS_APP_PASSWORD``) is a ``CredentialsRefused`` whose
message is the one line ``crier doctor`` and start-up show; the password never
appears in it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from announcements.errors import CrierError

BOT_SCOPE = "https://api.botframework.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
#: A token is renewed this many seconds before Microsoft says it expires.
EARLY = 300.0


class CredentialsRefused(CrierError):
    """The token endpoint refused the app id or password: nothing will reach Teams."""


class TokenUnavailable(Exception):
    """The token endpoint could not be reached or answered 5xx: try again later."""


@dataclass
class TokenProvider:
    url: str
    app_id: str
    password: str
    http: httpx.AsyncClient | None = None
    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __repr__(self) -> str:  # the password stays out of logs and tracebacks
        return f"TokenProvider(url={self.url!r}, app_id={self.app_id!r})"

    async def token(self, scope: str = BOT_SCOPE) -> str:
        """A valid bearer token for ``scope``."""
        cached = self._tokens.get(scope)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        async with self._lock:
            cached = self._tokens.get(scope)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            value, lifetime = await self._fetch(scope)
            self._tokens[scope] = (value, time.monotonic() + max(0.0, lifetime - EARLY))
            return value

    def forget(self, scope: str = BOT_SCOPE) -> None:
        """Drop a token the receiver refused (401): the next call fetches a new one."""
        self._tokens.pop(scope, None)

    async def _fetch(self, scope: str) -> tuple[str, float]:
        form = {"grant_type": "client_credentials", "client_id": self.app_id,
                "client_secret": self.password, "scope": scope}
        client = self.http or httpx.AsyncClient(timeout=10)
        try:
            answer = await client.post(self.url, data=form)
        except httpx.HTTPError as exc:
            raise TokenUnavailable(f"the token endpoint {self.url} is not reachable "
                                   f"({type(exc).__name__})") from None
        finally:
            if self.http is None:
                await client.aclose()
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.status_code >= 500 or answer.status_code == 429:
            raise TokenUnavailable(f"the token endpoint answered {answer.status_code}")
        token = body.get("access_token") if isinstance(body, dict) else None
        if answer.status_code != 200 or not isinstance(token, str):
            code = body.get("error", "") if isinstance(body, dict) else ""
            detail = (body.get("error_description") or "") if isinstance(body, dict) else ""
            first = str(detail).splitlines()[0] if detail else f"HTTP {answer.status_code}"
            raise CredentialsRefused(
                f"Microsoft refused the Teams app credentials ({code or 'error'}: {first})",
                "Check TEAMS_APP_ID and TEAMS_APP_PASSWORD (Azure bot → Configuration → "
                "Manage password: a new client secret's Value, not its ID) and "
                "TEAMS_TENANT_ID.")
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        return token, lifetime
