"""Settings of the email channel: the SMTP relay, the sender, and the DKIM key.

Read once from environment variables by :meth:`SmtpSettings.from_env`; every
malformed value is refused with a message naming the variable and the fix, so a
wrong setting stops the worker at start rather than failing every delivery.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class SmtpSettingsError(ValueError):
    """An email setting in the environment is malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """How to reach the SMTP relay and how outgoing mail is signed and addressed.

    ``starttls`` upgrades a plain connection (port 587); ``ssl`` is implicit TLS
    (port 465); never both. ``message_id_domain`` is the right-hand side of
    every ``Message-ID`` and the name given in ``EHLO``. DKIM signing is on when
    ``dkim_private_key`` (PEM bytes) is set.
    """

    host: str
    port: int
    from_address: str
    message_id_domain: str
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    from_name: str = ""
    reply_to: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.starttls and self.ssl:
            raise SmtpSettingsError(
                "starttls and ssl are both on: use ssl for implicit TLS (port 465) "
                "or starttls for port 587, not both")
        if self.timeout <= 0:
            raise SmtpSettingsError(f"timeout={self.timeout!r} must be above 0 seconds")
        if self.dkim_private_key and not (self.dkim_selector and self.dkim_domain):
            raise SmtpSettingsError("a DKIM key needs both dkim_selector and dkim_domain")

    @property
    def dkim_enabled(self) -> bool:
        """True when outgoing mail is DKIM-signed."""
        return bool(self.dkim_private_key)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """Read the settings from ``environ`` (default ``os.environ``).

        ``MAIL_FROM`` is required. Defaults: ``SMTP_HOST=localhost``; the port
        follows the TLS mode (465, 587 or 25); STARTTLS is on unless implicit TLS
        is, or the relay is on loopback (local relays such as mailpit rarely
        offer TLS, and nothing leaves the machine); ``SMTP_TIMEOUT=30``;
        ``MAIL_MESSAGE_ID_DOMAIN`` and ``DKIM_DOMAIN`` default to the domain of
        ``MAIL_FROM``.
        """
        env = os.environ if environ is None else environ
        host = _get(env, "SMTP_HOST") or "localhost"
        ssl = _bool(env, "SMTP_SSL", default=False)
        starttls = _bool(env, "SMTP_STARTTLS", default=not ssl and host not in _LOOPBACK)
        if ssl and starttls:
            raise SmtpSettingsError(
                "SMTP_SSL and SMTP_STARTTLS are both true: set SMTP_SSL=true for implicit "
                "TLS (port 465) or SMTP_STARTTLS=true for port 587, and the other to false")
        port = _port(env, default=465 if ssl else 587 if starttls else 25)

        from_address = _get(env, "MAIL_FROM")
        if not from_address:
            raise SmtpSettingsError(
                "MAIL_FROM is not set: set it to the sender address, "
                "e.g. MAIL_FROM=invoices@example.com")
        from_domain = _domain_of(from_address, "MAIL_FROM")
        reply_to = _get(env, "MAIL_REPLY_TO") or None
        if reply_to:
            _domain_of(reply_to, "MAIL_REPLY_TO")

        username = _get(env, "SMTP_USERNAME") or None
        password = env.get("SMTP_PASSWORD") or None
        if username and password is None:
            raise SmtpSettingsError(
                "SMTP_USERNAME is set but SMTP_PASSWORD is not: set both, or neither "
                "for a relay that accepts mail without login")
        if password is not None and not username:
            raise SmtpSettingsError(
                "SMTP_PASSWORD is set but SMTP_USERNAME is not: set the login name too")

        return cls(
            host=host,
            port=port,
            starttls=starttls,
            ssl=ssl,
            username=username,
            password=password,
            timeout=_timeout(env),
            from_address=from_address,
            from_name=_get(env, "MAIL_FROM_NAME"),
            message_id_domain=_get(env, "MAIL_MESSAGE_ID_DOMAIN") or from_domain,
            reply_to=reply_to,
            **_dkim(env, from_domain),
        )


def _get(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = _get(env, name).lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SmtpSettingsError(f"{name}={env[name]!r} is not a yes/no value: use {name}=true "
                            f"or {name}=false")


def _port(env: Mapping[str, str], *, default: int) -> int:
    raw = _get(env, "SMTP_PORT")
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise SmtpSettingsError(f"SMTP_PORT={raw!r} is not a port number: use a whole number "
                                "from 1 to 65535, e.g. SMTP_PORT=587")
    return port


def _timeout(env: Mapping[str, str]) -> float:
    raw = _get(env, "SMTP_TIMEOUT")
    if not raw:
        return 30.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 600:
        raise SmtpSettingsError(f"SMTP_TIMEOUT={raw!r} must be a number of seconds above 0 "
                                "and at most 600, e.g. SMTP_TIMEOUT=30")
    return seconds


def _domain_of(address: str, name: str) -> str:
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address):
        raise SmtpSettingsError(f"{name}={address!r} is not an email address: use a bare "
                                f"address, e.g. {name}=invoices@example.com")
    return domain


def _dkim(env: Mapping[str, str], from_domain: str) -> dict[str, object]:
    selector = _get(env, "DKIM_SELECTOR")
    key_file = _get(env, "DKIM_PRIVATE_KEY_FILE")
    domain = _get(env, "DKIM_DOMAIN")
    if not (selector or key_file or domain):
        return {}
    if not selector or not key_file:
        missing = "DKIM_SELECTOR" if not selector else "DKIM_PRIVATE_KEY_FILE"
        raise SmtpSettingsError(
            f"{missing} is not set: DKIM signing needs DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE "
            "(and optionally DKIM_DOMAIN); set them all, or unset them all to send unsigned")
    try:
        key = Path(key_file).read_bytes()
    except OSError as error:
        raise SmtpSettingsError(
            f"DKIM_PRIVATE_KEY_FILE={key_file!r} cannot be read ({error.strerror}): point it at "
            "the PEM file of the DKIM private key") from None
    if b"-----BEGIN" not in key or b"PRIVATE KEY-----" not in key:
        raise SmtpSettingsError(
            f"DKIM_PRIVATE_KEY_FILE={key_file!r} is not a PEM private key: it should start with "
            "'-----BEGIN PRIVATE KEY-----' or '-----BEGIN RSA PRIVATE KEY-----'")
    return {"dkim_selector": selector, "dkim_domain": domain or from_domain,
            "dkim_private_key": key}
