"""Microsoft's identity side for Teams tests: a real HTTP server on 127.0.0.1
(port 0) with a client-credentials token endpoint, OpenID metadata and a JWKS
holding an RSA key generated here, in the test.

``mint`` signs a Bot Framework request token as the Bot Framework would
(issuer ``https://api.botframework.com``, audience the app id, a ``serviceurl``
claim); tests change a claim or sign with ``stranger_key`` to forge one. The
token endpoint hands out opaque tokens for the right app id and password and
answers ``invalid_client`` (AADSTS7000215) otherwise; the connector and Graph
fakes accept only tokens it issued.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.server import ThreadedServer

APP_ID = "11111111-2222-3333-4444-555555555555"
PASSWORD = "app-password~secret"
TENANT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
ISSUER = "https://api.botframework.com"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeIdentity(ThreadedServer):
    label = "fake Microsoft identity"

    def __init__(self, app_id: str = APP_ID, password: str = PASSWORD,
                 tenant: str = TENANT) -> None:
        self.app_id, self.password, self.tenant = app_id, password, tenant
        self.key = new_key()
        self.kid = "key-1"
        self.stranger_key = new_key()
        self.issued: dict[str, str] = {}  # token -> scope
        self.token_requests: list[dict[str, str]] = []
        self.jwks_fetches = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    # -- URLs Crier is configured with ------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base}/{self.tenant}/oauth2/v2.0/token"

    @property
    def metadata_url(self) -> str:
        return f"{self.base}/v1/.well-known/openidconfiguration"

    def valid(self, authorization: str | None, scope: str) -> bool:
        token = (authorization or "").removeprefix("Bearer ")
        with self._lock:
            return self.issued.get(token) == scope

    # -- tokens the Bot Framework sends Crier ------------------------------------------

    def rotate(self) -> None:
        """Microsoft rolls its signing key: a new key with a new kid replaces the old."""
        self.key = new_key()
        self.kid = f"key-{next(self._ids) + 1}"

    def mint(self, service_url: str, *, key: Any = None, kid: str | None = None,
             **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": self.app_id, "serviceurl": service_url,
                "nbf": now - 10, "exp": now + 3600, "iat": now - 10}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.key, algorithm="RS256",
                          headers={"kid": kid or self.kid})

    # -- the server --------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        app.router.add_get("/keys", self._keys)

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        with self._lock:
            self.token_requests.append({k: str(v) for k, v in form.items()
                                        if k != "client_secret"})
        if request.match_info["tenant"] != self.tenant:
            return _json({"error": "invalid_request",
                          "error_description": "AADSTS90002: Tenant not found."}, 400)
        if form.get("client_id") != self.app_id or form.get("client_secret") != self.password:
            return _json({"error": "invalid_client", "error_description":
                          "AADSTS7000215: Invalid client secret provided. Ensure the secret "
                          "being sent in the request is the client secret value, not the "
                          "client secret ID.\r\nTrace ID: 0"}, 401)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.issued[token] = str(form.get("scope"))
        return _json({"token_type": "Bearer", "expires_in": 3599, "access_token": token})

    async def _metadata(self, request: web.Request) -> web.Response:
        return _json({"issuer": ISSUER, "jwks_uri": f"{self.base}/keys",
                      "id_token_signing_alg_values_supported": ["RS256"]})

    async def _keys(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "endorsements": ["msteams"]})
        return _json({"keys": [jwk]})


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)
