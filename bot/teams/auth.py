"""Who may post to ``POST /api/messages``: the Bot Framework, for our app, in our tenant.

Every request's ``Authorization: Bearer`` JWT is checked, and any failure
refuses the whole request (nothing is processed, nothing is sent):
- signed RS256 by a key of the ``jwks_uri`` named in ``TEAMS_OPENID_METADATA_URL``
  (keys are cached; an unknown ``kid`` fetches them again, at most once per
  ``refetch_after`` seconds);
- issuer ``https://api.botframework.com``, audience ``TEAMS_APP_ID``;
- ``exp`` and ``nbf`` hold, with five minutes' skew;
- the ``serviceurl`` claim equals the activity's ``serviceUrl``;
- the activity's tenant (``channelData.tenant.id``) is ``TEAMS_TENANT_ID``.
A bad or missing token is 401; a valid token for another service URL or an
activity from another tenant is 403.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

ISSUER = "https://api.botframework.com"
#: Clock skew allowed on ``exp`` and ``nbf``.
LEEWAY = 300
ALGORITHMS = ["RS256"]


class Refused(Exception):
    """The request is not from the Bot Framework for this app: ``status`` 401 or 403."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class RequestValidator:
    metadata_url: str
    app_id: str
    tenant_id: str
    http: httpx.AsyncClient | None = None
    #: Least seconds between two fetches of the keys caused by an unknown ``kid``.
    refetch_after: float = 5.0
    _keys: dict[str, Any] = field(default_factory=dict)
    _fetched_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def check(self, authorization: str | None, activity: dict[str, Any]) -> dict[str, Any]:
        """The token's claims, or ``Refused``."""
        if not authorization or not authorization.startswith("Bearer "):
            raise Refused(401, "no Bearer token")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Refused(401, "the token is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise Refused(401, f"the token is signed with {header.get('alg')!r}, not RS256")
        key = await self._key(str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=ALGORITHMS, audience=self.app_id, issuer=ISSUER,
                leeway=LEEWAY, options={"require": ["exp", "iss", "aud"]})
        except jwt.PyJWTError as exc:
            raise Refused(401, f"the token is not valid: {exc}") from None
        service = activity.get("serviceUrl")
        if claims.get("serviceurl") != service:
            raise Refused(403, "the activity's serviceUrl is not the token's")
        tenant = ((activity.get("channelData") or {}).get("tenant") or {}).get("id")
        if tenant != self.tenant_id:
            raise Refused(403, "the activity is from another tenant")
        return claims

    async def _key(self, kid: str) -> Any:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid not in self._keys and (
                    not self._keys or time.monotonic() - self._fetched_at >= self.refetch_after):
                await self.fetch()
        if kid not in self._keys:
            raise Refused(401, "the token is signed by a key the Bot Framework does not list")
        return self._keys[kid]

    async def fetch(self) -> None:
        """Read the signing keys now (``crier doctor``; the first request does it too)."""
        client = self.http or httpx.AsyncClient(timeout=10)
        try:
            meta = (await client.get(self.metadata_url)).raise_for_status().json()
            jwks = (await client.get(meta["jwks_uri"])).raise_for_status().json()
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise Refused(401, f"cannot read the Bot Framework's keys ({exc})") from None
        finally:
            if self.http is None:
                await client.aclose()
        keys = {}
        for item in jwks.get("keys", []) if isinstance(jwks, dict) else []:
            try:
                keys[str(item.get("kid"))] = jwt.PyJWK(item, "RS256").key
            except (jwt.PyJWTError, TypeError, ValueError):
                continue
        self._keys = keys
        self._fetched_at = time.monotonic()
