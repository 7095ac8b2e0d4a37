"""Settings of staff sign-in through an OpenID Connect provider, read from the environment.

Off unless ``OIDC_ISSUER`` is set. Kept apart from :mod:`portal.config` so the
parsing (role map, MFA methods) stays small and testable on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from portal.models.users import Role

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class OidcConfigError(ValueError):
    """An OIDC_* variable is malformed; the message names it and the fix."""


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """How Herald asks the company's identity provider who a staff member is."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    provider_name: str
    scopes: str = "openid email profile"
    # The ID token claim holding groups or roles (a dotted path reaches into objects),
    # and which of its values gives which Herald role, first match wins.
    role_claim: str | None = None
    role_map: tuple[tuple[str, Role], ...] = ()
    # Create a staff account at first sign-in (with the mapped role) instead of refusing.
    auto_provision: bool = False
    # ``amr`` values that count as a second factor done at the provider (RFC 8176).
    mfa_amr: frozenset[str] = frozenset({"mfa"})
    timeout_seconds: float = 10.0

    def role_for(self, claims: Mapping[str, object]) -> Role | None:
        """The Herald role the claims map to (first entry of the map that matches), or None."""
        if not self.role_claim:
            return None
        value: object = claims
        for part in self.role_claim.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        values = {value} if isinstance(value, str) else \
            {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()
        return next((role for claim_value, role in self.role_map if claim_value in values), None)

    def asserts_mfa(self, claims: Mapping[str, object]) -> bool:
        """True when the ID token's ``amr`` names a method configured as multi-factor."""
        amr = claims.get("amr")
        return isinstance(amr, list) and any(isinstance(m, str) and m in self.mfa_amr
                                             for m in amr)


def _role_map(raw: str) -> tuple[tuple[str, Role], ...]:
    staff_roles = {role.value: role for role in Role if role is not Role.CUSTOMER}
    pairs = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        claim_value, sep, role = item.rpartition("=")
        if not sep or not claim_value.strip() or role.strip() not in staff_roles:
            raise OidcConfigError(
                f"OIDC_ROLE_MAP item {item!r} must read CLAIM_VALUE=ROLE with ROLE one of "
                f"{', '.join(staff_roles)} (e.g. 'herald-admins=admin,billing=billing_operator')")
        pairs.append((claim_value.strip(), staff_roles[role.strip()]))
    return tuple(pairs)


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise OidcConfigError(f"{name}={raw!r} must be true or false")


def oidc_from_env(env: Mapping[str, str]) -> OidcSettings | None:
    """The provider's settings, or None when ``OIDC_ISSUER`` is not set."""
    issuer = (env.get("OIDC_ISSUER") or "").strip().rstrip("/")
    if not issuer:
        return None
    parts = urlsplit(issuer)
    if parts.scheme != "https" and not (parts.scheme == "http"
                                        and parts.hostname in LOOPBACK_HOSTS):
        raise OidcConfigError(f"OIDC_ISSUER={issuer!r} must be an https URL (plain http only "
                              "on this machine's loopback, for trials)")
    client_id, secret = env.get("OIDC_CLIENT_ID"), env.get("OIDC_CLIENT_SECRET")
    if not client_id or not secret:
        raise OidcConfigError("OIDC_ISSUER is set, so OIDC_CLIENT_ID and OIDC_CLIENT_SECRET "
                              "must be too (from the client registered at the provider)")
    role_map = _role_map(env.get("OIDC_ROLE_MAP") or "")
    role_claim = (env.get("OIDC_ROLE_CLAIM") or "").strip() or None
    if role_map and role_claim is None:
        raise OidcConfigError("OIDC_ROLE_MAP needs OIDC_ROLE_CLAIM, the claim it reads "
                              "(e.g. groups)")
    auto = _flag(env, "OIDC_AUTO_PROVISION")
    if auto and not role_map:
        raise OidcConfigError("OIDC_AUTO_PROVISION needs OIDC_ROLE_CLAIM and OIDC_ROLE_MAP: "
                              "a new account gets the role its claims map to")
    mfa_raw = env.get("OIDC_MFA_AMR")
    mfa = frozenset({"mfa"}) if mfa_raw is None else frozenset(
        filter(None, (m.strip() for m in mfa_raw.split(","))))
    return OidcSettings(
        issuer=issuer, client_id=client_id, client_secret=secret,
        provider_name=(env.get("OIDC_PROVIDER_NAME") or "").strip() or parts.hostname or issuer,
        scopes=(env.get("OIDC_SCOPES") or "openid email profile").strip(),
        role_claim=role_claim, role_map=role_map, auto_provision=auto, mfa_amr=mfa)
