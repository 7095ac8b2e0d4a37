"""OpenID Connect for staff sign-in: the authorization code flow with PKCE, state and nonce.

No Flask here: :func:`begin` makes the provider's authorization URL and what the
browser's session must keep (state, nonce, PKCE verifier); :func:`finish` checks
the state, exchanges the code (Authlib's OAuth2 client, the secret sent as HTTP
Basic unless the provider only takes it in the body), then verifies the ID
token: RS256/ES256/PS256 signature against the provider's JWKS (fetched again
once when the key id is unknown, for key rotation), issuer, audience (and
``azp`` when there are several), expiry, issue time and nonce (joserfc, the JOSE
library Authlib builds on).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from portal.oidc_settings import OidcSettings

ALGORITHMS = ("RS256", "ES256", "PS256")
LEEWAY_SECONDS = 60  # clock skew between Herald and the provider
CACHE_SECONDS = 3600


class OidcError(Exception):
    """The sign-in cannot go on; ``reason`` is short and safe to log (never a token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Cached:
    metadata: dict
    jwks: dict | None
    fetched_at: float


_cache: dict[str, _Cached] = {}
_cache_lock = threading.Lock()


def _get_json(settings: OidcSettings, url: str) -> dict:
    try:
        response = requests.get(url, timeout=settings.timeout_seconds,
                                headers={"Accept": "application/json"})
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise OidcError(f"provider unreachable or invalid answer from {url}: "
                        f"{type(exc).__name__}") from None
    if not isinstance(body, dict):
        raise OidcError(f"provider answered {url} with no JSON object")
    return body


def provider_metadata(settings: OidcSettings) -> dict:
    """The provider's discovery document (cached an hour), checked against the spec."""
    with _cache_lock:
        cached = _cache.get(settings.issuer)
        if cached and time.monotonic() - cached.fetched_at < CACHE_SECONDS:
            return cached.metadata
    body = _get_json(settings, f"{settings.issuer}/.well-known/openid-configuration")
    metadata = OpenIDProviderMetadata(body)
    try:
        metadata.validate()
    except ValueError as exc:
        raise OidcError(f"discovery document invalid: {exc}") from None
    if body.get("issuer") != settings.issuer:
        raise OidcError("discovery document names another issuer")
    with _cache_lock:
        _cache[settings.issuer] = _Cached(dict(body), None, time.monotonic())
    return dict(body)


def _key_set(settings: OidcSettings, metadata: dict, *, refresh: bool = False) -> KeySet:
    with _cache_lock:
        cached = _cache.get(settings.issuer)
        jwks = cached.jwks if cached and not refresh else None
    if jwks is None:
        jwks = _get_json(settings, metadata["jwks_uri"])
        with _cache_lock:
            if settings.issuer in _cache:
                _cache[settings.issuer].jwks = jwks
    try:
        return KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise OidcError(f"provider's JWKS unusable: {type(exc).__name__}") from None


def forget_cached() -> None:
    """Drop cached discovery documents and keys (tests; a provider that moved)."""
    with _cache_lock:
        _cache.clear()


def _client(settings: OidcSettings, metadata: dict, redirect_uri: str) -> OAuth2Session:
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    auth_method = "client_secret_basic" if "client_secret_basic" in methods \
        else "client_secret_post"
    return OAuth2Session(settings.client_id, settings.client_secret, scope=settings.scopes,
                         redirect_uri=redirect_uri, code_challenge_method="S256",
                         token_endpoint_auth_method=auth_method,
                         default_timeout=settings.timeout_seconds)


def begin(settings: OidcSettings, redirect_uri: str) -> tuple[str, dict]:
    """The URL to send the browser to, and the values its session must keep until the return."""
    metadata = provider_metadata(settings)
    pending = {"state": secrets.token_urlsafe(32), "nonce": secrets.token_urlsafe(32),
               "verifier": secrets.token_urlsafe(64)}
    with _client(settings, metadata, redirect_uri) as client:
        url, _state = client.create_authorization_url(
            metadata["authorization_endpoint"], state=pending["state"], nonce=pending["nonce"],
            code_verifier=pending["verifier"])
    return url, pending


def finish(settings: OidcSettings, redirect_uri: str, pending: dict, args: dict) -> dict:
    """The verified ID token claims of the browser's return to ``redirect_uri``."""
    if args.get("error"):
        raise OidcError(f"provider refused: {str(args.get('error'))[:60]}")
    state, code = args.get("state") or "", args.get("code") or ""
    if not pending.get("state") or not hmac.compare_digest(str(state), pending["state"]):
        raise OidcError("state does not match this browser's sign-in")
    if not code:
        raise OidcError("no authorization code")
    metadata = provider_metadata(settings)
    with _client(settings, metadata, redirect_uri) as client:
        try:
            token = client.fetch_token(metadata["token_endpoint"], grant_type="authorization_code",
                                       code=code, code_verifier=pending["verifier"])
        except (AuthlibBaseError, requests.RequestException, ValueError) as exc:
            raise OidcError(f"token request failed: {type(exc).__name__}") from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise OidcError("token answer has no ID token")
    return verify_id_token(settings, metadata, id_token, pending["nonce"])


def verify_id_token(settings: OidcSettings, metadata: dict, id_token: str, nonce: str,
                    now: int | None = None) -> dict:
    """The ID token's claims, once signature, issuer, audience, times and nonce are right."""
    try:
        try:
            decoded = jwt.decode(id_token, _key_set(settings, metadata), algorithms=ALGORITHMS)
        except (ValueError, JoseError):
            # An unknown key id: the provider may have rotated its keys since we fetched them.
            decoded = jwt.decode(id_token, _key_set(settings, metadata, refresh=True),
                                 algorithms=ALGORITHMS)
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            now=now, leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": settings.issuer},
            aud={"essential": True, "value": settings.client_id},
            sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
            nonce={"essential": True, "value": nonce})
        registry.validate(claims)
    except JoseError as exc:
        raise OidcError(f"ID token refused: {exc.error}"
                        + (f" ({exc.description})" if exc.description else "")) from None
    except ValueError as exc:
        raise OidcError(f"ID token refused: {type(exc).__name__}") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != settings.client_id:
        raise OidcError("ID token refused: several audiences and azp is not this client")
    if not isinstance(claims.get("sub"), str) or not 0 < len(claims["sub"]) <= 255:
        raise OidcError("ID token refused: sub missing or too long")
    return claims
