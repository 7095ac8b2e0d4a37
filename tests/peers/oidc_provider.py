"""A local OpenID Connect provider on 127.0.0.1, for staff sign-in tests.

It speaks the real protocol: a discovery document, a JWKS, an authorization
endpoint that insists on ``response_type=code``, a registered redirect URI,
``state``, ``nonce`` and an S256 PKCE challenge, and answers with a 302 carrying
the code; a token endpoint that authenticates the client (HTTP Basic or form),
checks the code, its redirect URI and the PKCE verifier, and issues an
RS256-signed ID token (joserfc). Switches make it misbehave the ways a test
needs: another nonce or audience, an expired token, a token signed with a key
it does not publish, a rotated key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

CLIENT_ID = "herald-staff"
CLIENT_SECRET = "local-client-secret"


def _new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class OidcProvider:
    """The provider's state, the person signing in, and the switches."""

    host: str = "127.0.0.1"
    port: int = 0
    redirect_uris: list[str] = field(default_factory=list)
    # The person the authorization endpoint signs in (as a provider would after its login).
    person: dict[str, Any] = field(default_factory=lambda: {
        "sub": "u-1001", "email": "ops@example.com", "email_verified": True,
        "name": "Olivia Ops"})
    keys: list[RSAKey] = field(default_factory=lambda: [_new_key("key-1")])
    # Switches: each changes the next ID tokens.
    nonce_override: str | None = None
    audience: str | list[str] | None = None
    expires_in: int = 300
    sign_with_unpublished_key: bool = False
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
        }

    def jwks(self) -> dict[str, Any]:
        return KeySet(self.keys).as_dict(private=False)

    def rotate_key(self) -> None:
        """Publish a new signing key only (the old one is gone)."""
        self.keys = [_new_key(f"key-{secrets.token_hex(4)}")]

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {**self.person, "iss": self.issuer,
                  "aud": self.audience if self.audience is not None else CLIENT_ID,
                  "iat": now, "exp": now + self.expires_in,
                  "nonce": self.nonce_override if self.nonce_override is not None else nonce}
        key = _new_key(self.keys[0].kid) if self.sign_with_unpublished_key else self.keys[0]
        return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)

    def authorize(self, params: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """Check an authorization request; a 302 back with a code, or a 400 naming the fault."""
        faults = [name for name, ok in (
            ("response_type", params.get("response_type") == "code"),
            ("client_id", params.get("client_id") == CLIENT_ID),
            ("redirect_uri", params.get("redirect_uri") in self.redirect_uris),
            ("scope", "openid" in (params.get("scope") or "").split()),
            ("state", bool(params.get("state"))),
            ("nonce", bool(params.get("nonce"))),
            ("code_challenge", bool(params.get("code_challenge"))),
            ("code_challenge_method", params.get("code_challenge_method") == "S256"),
        ) if not ok]
        if faults:
            return 400, {}, "invalid request: " + ", ".join(faults)
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"redirect_uri": params["redirect_uri"], "nonce": params["nonce"],
                            "challenge": params["code_challenge"], "used": False}
        location = params["redirect_uri"] + "?" + urlencode(
            {"code": code, "state": params["state"]})
        return 302, {"Location": location}, ""

    def token(self, form: dict[str, str], authorization: str | None
              ) -> tuple[int, dict[str, Any]]:
        """Exchange a code for tokens, as RFC 6749 and 7636 say."""
        self.token_requests.append({"form": dict(form), "basic": bool(authorization)})
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _sep, secret = decoded.partition(":")
        if client_id != CLIENT_ID or secret != CLIENT_SECRET:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        grant = self.codes.get(form.get("code") or "")
        if grant is None or grant["used"] or form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier") or ""
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier"}
        grant["used"] = True
        return 200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                     "expires_in": 300, "id_token": self.id_token(grant["nonce"])}


def _handler(peer: OidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet in test output
            pass

        def _send(self, status: int, body: str | dict, headers: dict[str, str] | None = None
                  ) -> None:
            data = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json" if isinstance(body, dict)
                             else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # the http.server hook's name
            parts = urlsplit(self.path)
            if parts.path == "/.well-known/openid-configuration":
                self._send(200, peer.discovery())
            elif parts.path == "/jwks":
                self._send(200, peer.jwks())
            elif parts.path == "/authorize":
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                status, headers, body = peer.authorize(params)
                self._send(status, body, headers)
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:  # the http.server hook's name
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            if urlsplit(self.path).path != "/token":
                self._send(404, {"error": "not_found"})
                return
            form = {k: v[0] for k, v in parse_qs(body).items()}
            status, answer = peer.token(form, self.headers.get("Authorization"))
            self._send(status, answer)

    return Handler


@pytest.fixture
def oidc_provider() -> Iterator[OidcProvider]:
    """A running provider on a free loopback port."""
    peer = OidcProvider()
    server = ThreadingHTTPServer((peer.host, 0), _handler(peer))
    peer.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
