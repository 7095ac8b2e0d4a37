"""Herald's settings, read once from environment variables.

Every setting has an embedded default so that ``herald demo`` runs with no
variable at all: SQLite in the instance folder, the task queue beside it, and a
secret key generated on first start and kept in the instance folder.
"""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlencode

from distribution.channels.email_settings import SmtpSettings, SmtpSettingsError
from portal.oidc_settings import OidcConfigError, OidcSettings, oidc_from_env
from portal.proxy import ProxyConfigError, ProxySettings


class ConfigError(ValueError):
    """A setting in the environment is malformed; the message names the variable and the fix."""


SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name, not a secret


@dataclass(frozen=True, slots=True)
class Settings:
    """Typed view of Herald's environment variables."""

    instance_path: Path
    database_url: str
    secret_key: str = field(repr=False)
    huey_url: str | None
    einvoice_rules_dir: Path | None
    document_store: str
    public_url: str
    session_lifetime_minutes: int
    import_progress_threshold: int
    # Channels; each is off until configured (the portal inbox is always on).
    smtp: SmtpSettings | None = None
    vapid_private_key_file: Path | None = None
    vapid_subject: str | None = None
    fcm_service_account_file: Path | None = None
    # FCM's endpoint, only ever replaced by the demo and tests (their local stand-ins).
    fcm_api_url: str | None = None
    # Real browsers only hand out https push endpoints; the demo's local sink is plain http.
    web_push_allow_http: bool = False
    peppol_outbox: Path | None = None
    peppol_api_url: str | None = None
    peppol_api_token: str | None = field(default=None, repr=False)
    # Leases (ARCHITECTURE decision 5): how long a released delivery may wait for its send
    # task, and how long one send may take, before the reconciler takes it back.
    release_lease_seconds: int = 300
    send_lease_seconds: int = 120
    # A worker renders PDFs in child processes, each replaced after this many documents
    # (the memory WeasyPrint's C libraries keep goes back with it; portal.render_pool).
    pdf_documents_per_process: int = 1000
    # Signing: a PKCS#12 key for PAdES signatures on signed PDFs (none: certificate page
    # only), and how often the current signer is reminded and when a request expires.
    signing_key_file: Path | None = None
    signing_key_password: str | None = field(default=None, repr=False)
    signing_remind_hours: int = 48
    signing_expire_days: int = 30
    # Paying: "review & pay" links live this many days past the due date (at most
    # MAX_PAY_LINK_DAYS); Stripe is on only with its key; bank transfer needs the seller's IBAN.
    pay_link_days_after_due: int = 30
    payment_providers: tuple[str, ...] = ("stripe", "bank_transfer")
    stripe_secret_key: str | None = field(default=None, repr=False)
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    # Stripe's API address, only ever replaced by tests (a local stand-in).
    stripe_api_base: str | None = None
    # Sign-in: a session ends after this long unused (and after session_lifetime_minutes
    # in any case); emailed links live this long; attempts are limited per account and
    # per client address within a sliding window.
    sign_in_idle_minutes: int = 60
    sign_in_remember_days: int = 30
    sign_in_link_minutes: int = 15
    sign_in_invitation_days: int = 7
    sign_in_limit_window_minutes: int = 15
    sign_in_limit_per_account: int = 5
    sign_in_limit_per_address: int = 30
    # Integration API (/api/v1): requests per API key per fixed window; customer app tokens' life.
    api_rate_limit: int = 600
    api_rate_window_seconds: int = 60
    api_customer_token_days: int = 30
    # /metrics: served with this Bearer token; to loopback clients without one only when
    # metrics_allow_loopback (judged on the real client, after the proxy settings below).
    metrics_token: str | None = field(default=None, repr=False)
    metrics_allow_loopback: bool = False
    # Behind a reverse proxy: which peers are proxies and how many hops set each
    # X-Forwarded-* header (portal.proxy).
    proxy: ProxySettings = field(default_factory=ProxySettings)
    # Earlier secret keys, still accepted while a new SECRET_KEY is rolled out (Flask's
    # session cookies and sealed database secrets, see distribution.sealing).
    secret_key_fallbacks: tuple[str, ...] = field(default=(), repr=False)
    # Data lifecycle: years issued documents and evidence are kept, by default and per
    # country ("BE=7,NL=7,DE=10"); operational logs' days; finished outbound webhook
    # deliveries' days.
    retention_years: int = 7
    retention_years_by_country: tuple[tuple[str, int], ...] = ()
    operational_log_days: int = 90
    webhook_delivery_days: int = 90
    # Staff sign-in through the company's OpenID Connect provider (None: off).
    oidc: OidcSettings | None = None
    # Refund and credit requests up to this amount (in the seller's currency) are approved
    # when made; larger ones wait for a finance approver. 0 sends every request to finance.
    refund_auto_approve_limit: Decimal = Decimal("50.00")

    @classmethod
    def from_env(cls, instance_path: Path, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``), filling embedded defaults."""
        env = os.environ if environ is None else environ
        instance_path = Path(env.get("HERALD_INSTANCE_PATH") or instance_path)
        instance_path.mkdir(parents=True, exist_ok=True)
        rules = env.get("EINVOICE_RULES_DIR") or None
        if rules is not None and not Path(rules).is_dir():
            raise ConfigError(
                f"EINVOICE_RULES_DIR={rules!r} is not a folder; point it at the folder "
                "that holds ubl-2.1/, cen/ and peppol/, or unset it"
            )
        return cls(
            instance_path=instance_path,
            database_url=env.get("DATABASE_URL") or default_database_url(instance_path),
            secret_key=env.get("SECRET_KEY") or persisted_secret_key(instance_path),
            secret_key_fallbacks=tuple(
                key.strip() for key in (env.get("SECRET_KEY_FALLBACKS") or "").split(",")
                if key.strip()),
            huey_url=env.get("HUEY_URL") or None,
            einvoice_rules_dir=Path(rules) if rules else None,
            document_store=_document_store(env),
            public_url=(env.get("HERALD_PUBLIC_URL") or "http://127.0.0.1:5000").rstrip("/"),
            session_lifetime_minutes=_positive_int(env, "SESSION_LIFETIME_MINUTES", 60 * 12),
            import_progress_threshold=_positive_int(env, "IMPORT_PROGRESS_THRESHOLD", 200),
            smtp=_smtp(env),
            vapid_private_key_file=_path(env, "VAPID_PRIVATE_KEY_FILE", must_exist=True),
            vapid_subject=env.get("VAPID_SUBJECT") or None,
            fcm_service_account_file=_path(env, "FCM_SERVICE_ACCOUNT_FILE", must_exist=True),
            fcm_api_url=_http_url(env, "FCM_API_URL"),
            web_push_allow_http=_flag(env, "WEB_PUSH_ALLOW_HTTP"),
            peppol_outbox=_path(env, "PEPPOL_OUTBOX"),
            peppol_api_url=env.get("PEPPOL_API_URL") or None,
            peppol_api_token=env.get("PEPPOL_API_TOKEN") or None,
            release_lease_seconds=_positive_int(env, "HERALD_RELEASE_LEASE_SECONDS", 300),
            send_lease_seconds=_positive_int(env, "HERALD_SEND_LEASE_SECONDS", 120),
            pdf_documents_per_process=_positive_int(env, "HERALD_PDF_DOCUMENTS_PER_PROCESS",
                                                    1000),
            pay_link_days_after_due=_pay_link_days(env),
            payment_providers=_payment_providers(env),
            stripe_secret_key=env.get("STRIPE_SECRET_KEY") or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=_http_url(env, "STRIPE_API_BASE"),
            signing_key_file=_path(env, "SIGNING_KEY_FILE", must_exist=True),
            signing_key_password=env.get("SIGNING_KEY_PASSWORD") or None,
            signing_remind_hours=_positive_int(env, "SIGNING_REMIND_HOURS", 48),
            signing_expire_days=_positive_int(env, "SIGNING_EXPIRE_DAYS", 30),
            sign_in_idle_minutes=_positive_int(env, "SIGN_IN_IDLE_MINUTES", 60),
            sign_in_remember_days=_positive_int(env, "SIGN_IN_REMEMBER_DAYS", 30),
            sign_in_link_minutes=_positive_int(env, "SIGN_IN_LINK_MINUTES", 15),
            sign_in_invitation_days=_positive_int(env, "SIGN_IN_INVITATION_DAYS", 7),
            sign_in_limit_window_minutes=_positive_int(env, "SIGN_IN_LIMIT_WINDOW_MINUTES", 15),
            sign_in_limit_per_account=_positive_int(env, "SIGN_IN_LIMIT_PER_ACCOUNT", 5),
            sign_in_limit_per_address=_positive_int(env, "SIGN_IN_LIMIT_PER_ADDRESS", 30),
            api_rate_limit=_positive_int(env, "HERALD_API_RATE_LIMIT", 600),
            api_rate_window_seconds=_positive_int(env, "HERALD_API_RATE_WINDOW_SECONDS", 60),
            api_customer_token_days=_positive_int(env, "HERALD_API_CUSTOMER_TOKEN_DAYS", 30),
            metrics_token=env.get("METRICS_TOKEN") or None,
            metrics_allow_loopback=_flag(env, "METRICS_ALLOW_LOOPBACK"),
            proxy=_proxy(env),
            retention_years=_positive_int(env, "RETENTION_YEARS", 7),
            retention_years_by_country=_retention_by_country(env),
            operational_log_days=_positive_int(env, "RETENTION_OPERATIONAL_LOG_DAYS", 90),
            webhook_delivery_days=_positive_int(env, "RETENTION_WEBHOOK_DELIVERY_DAYS", 90),
            oidc=_oidc(env),
            refund_auto_approve_limit=_amount(env, "REFUND_AUTO_APPROVE_LIMIT", "50.00"),
        )


def _oidc(env: Mapping[str, str]) -> OidcSettings | None:
    try:
        return oidc_from_env(env)
    except OidcConfigError as exc:
        raise ConfigError(str(exc)) from exc


def _proxy(env: Mapping[str, str]) -> ProxySettings:
    try:
        return ProxySettings.from_env(env)
    except ProxyConfigError as exc:
        raise ConfigError(str(exc)) from exc


def default_database_url(instance_path: Path) -> str:
    """The embedded database: one SQLite file in the instance folder."""
    return f"sqlite:///{instance_path / 'herald.sqlite3'}"


def persisted_secret_key(instance_path: Path) -> str:
    """Return the instance's secret key, creating it (mode 0600) on first use.

    A constant key in the code would let anyone forge sessions on every install,
    so a fresh one is generated per instance and kept across restarts.

    Several processes (web, worker, dispatcher) may start at the same moment on a new
    instance. The key is written to a private file first and then linked into place,
    which succeeds for exactly one of them, so none can read a file another has
    created but not yet written; the losers read the winner's key. On a filesystem
    without hard links the file is claimed with ``O_EXCL`` instead, and a reader that
    finds it still empty waits a moment for its writer.
    """
    path = instance_path / SECRET_KEY_FILE
    try:
        return _read_secret_key(path)
    except FileNotFoundError:
        pass
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48) + "\n"
    fd, draft = tempfile.mkstemp(dir=instance_path, prefix=".secret_key-")  # mode 0600
    try:
        _write_synced(fd, key)
        try:
            os.link(draft, path)
        except FileExistsError:  # another process started then and won
            pass
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            _claim_without_link(path, key)
    finally:
        os.unlink(draft)
    return _read_secret_key(path)


# What link() fails with where the filesystem has no hard links (FAT, some network shares).
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}


def _claim_without_link(path: Path, key: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process claimed it: _read_secret_key waits for its key
    _write_synced(fd, key)


def _write_synced(fd: int, text: str) -> None:
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _read_secret_key(path: Path, wait: float = 0.5) -> str:
    deadline = time.monotonic() + wait
    while not (key := path.read_text().strip()):
        if time.monotonic() >= deadline:  # no writer is coming: a crash left it empty
            raise ConfigError(f"the secret key file {path} is empty: delete it so that "
                              "Herald makes a new one (signed-in sessions end), or set "
                              "SECRET_KEY")
        time.sleep(0.02)
    return key


def _smtp(env: Mapping[str, str]) -> SmtpSettings | None:
    if not env.get("MAIL_FROM"):
        return None  # email is off until an address to send from is configured
    try:
        return SmtpSettings.from_env(env)
    except SmtpSettingsError as exc:
        raise ConfigError(str(exc)) from exc


def _path(env: Mapping[str, str], name: str, *, must_exist: bool = False) -> Path | None:
    raw = env.get(name)
    if not raw:
        return None
    path = Path(raw)
    if must_exist and not path.is_file():
        raise ConfigError(f"{name}={raw!r} is not a file; point it at the file or unset it")
    return path


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be a whole number above 0, e.g. {name}={default}")
    return value


def _amount(env: Mapping[str, str], name: str, default: str) -> Decimal:
    raw = (env.get(name) or "").strip() or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0 or value.as_tuple().exponent < -2:
        raise ConfigError(f"{name}={raw!r} must be an amount of at least 0 with at most 2 "
                          f"decimals, e.g. {name}={default}")
    return value


def _http_url(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if not raw:
        return None
    if not raw.startswith(("https://", "http://")):
        raise ConfigError(f"{name}={raw!r} must be an http(s) URL, e.g. "
                          f"{name}=http://127.0.0.1:8085, or unset")
    return raw.rstrip("/")


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}={env[name]!r} must be true or false")


MAX_PAY_LINK_DAYS = 120
PAYMENT_PROVIDERS = ("stripe", "bank_transfer")


def _pay_link_days(env: Mapping[str, str]) -> int:
    days = _positive_int(env, "PAY_LINK_DAYS_AFTER_DUE", 30)
    if days > MAX_PAY_LINK_DAYS:
        raise ConfigError(f"PAY_LINK_DAYS_AFTER_DUE={days} is too long; a review & pay link "
                          f"lives at most {MAX_PAY_LINK_DAYS} days past the due date")
    return days


def _payment_providers(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("HERALD_PAYMENT_PROVIDERS")
    if raw is None or not raw.strip():
        return PAYMENT_PROVIDERS
    names = tuple(dict.fromkeys(n.strip().lower() for n in raw.split(",") if n.strip()))
    unknown = [n for n in names if n not in PAYMENT_PROVIDERS]
    if unknown:
        raise ConfigError(f"HERALD_PAYMENT_PROVIDERS={raw!r} names {', '.join(unknown)}; "
                          f"choose from {', '.join(PAYMENT_PROVIDERS)}, comma-separated")
    return names



def _document_store(env: Mapping[str, str]) -> str:
    """DOCUMENT_STORE; for ``s3://`` the endpoint and region settings join its query."""
    setting = env.get("DOCUMENT_STORE") or "database"
    if not setting.startswith("s3://"):
        return setting
    names = {option: f"DOCUMENT_STORE_S3_{option.upper()}" for option in ("endpoint_url", "region")}
    extra = {option: env[name] for option, name in names.items() if env.get(name)}
    return setting + ("&" if "?" in setting else "?") + urlencode(extra) if extra else setting


def _retention_by_country(env: Mapping[str, str]) -> tuple[tuple[str, int], ...]:
    raw = (env.get("RETENTION_YEARS_BY_COUNTRY") or "").strip()
    if not raw:
        return ()
    pairs = []
    for item in raw.split(","):
        code, _, years = item.strip().partition("=")
        code = code.strip().upper()
        if len(code) != 2 or not code.isalpha() or not years.strip().isdigit() \
                or int(years) <= 0:
            raise ConfigError(f"RETENTION_YEARS_BY_COUNTRY={raw!r}: {item.strip()!r} must read "
                              "COUNTRY=YEARS with a two-letter country code, e.g. "
                              "RETENTION_YEARS_BY_COUNTRY=BE=7,DE=10")
        pairs.append((code, int(years)))
    return tuple(pairs)
