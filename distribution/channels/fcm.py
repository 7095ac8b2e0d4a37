"""Firebase Cloud Messaging (HTTP v1) through firebase-admin.

The registration token is the address. Every message carries a collapse key
derived from the delivery's idempotency key, and the same value as Android
notification ``tag`` and ``apns-collapse-id``, so a resend after a crash
replaces the notification instead of showing a second one (ARCHITECTURE.md,
decision 5).

Two things here lean on firebase-admin internals, checked when a channel is
built so that an upgrade that moves them fails loudly instead of silently
talking to Google: the per-app messaging service's ``_fcm_url`` (to point one
channel at another endpoint, as tests do) and its HTTP client's session (to turn
off urllib3's hidden retries).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import firebase_admin
import google.auth.exceptions
import requests.adapters
from firebase_admin import credentials, exceptions, messaging
from urllib3.util.retry import Retry

from distribution.channels.base import (
    ChannelError,
    ChannelName,
    ErrorKind,
    OutgoingMessage,
    Receipt,
)

# Keys Herald puts in the FCM ``data`` map. FCM reserves "from", "message_type"
# and anything starting with "google" or "gcm", hence the prefix.
DATA_LINK = "herald_link"
DATA_MESSAGE_TYPE = "herald_message_type"
DATA_DELIVERY_ID = "herald_delivery_id"

DEFAULT_TTL_SECONDS = 7 * 24 * 3600
_RESERVED_DATA_KEYS = frozenset({"from", "message_type", "notification"})
_RESERVED_DATA_PREFIXES = ("google", "gcm")
_SEND_PATH = "/v1/projects/{project_id}/messages:send"
_SERVICE_ACCOUNT_KEYS = ("type", "project_id", "private_key", "client_email", "token_uri")
_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

# Canonical codes after which trying again later may succeed.
_RETRYABLE_CODES = frozenset({
    exceptions.RESOURCE_EXHAUSTED, exceptions.UNAVAILABLE, exceptions.INTERNAL,
    exceptions.DEADLINE_EXCEEDED, exceptions.UNKNOWN, exceptions.ABORTED, exceptions.CANCELLED,
})


class FcmConfigError(ValueError):
    """The FCM configuration (service account, endpoint, app name) cannot be used."""


def load_service_account(source: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """Read a service-account key (a dict, or the path of its JSON file) and check its shape."""
    if isinstance(source, Mapping):
        info = dict(source)
        where = "the service account"
    else:
        path = Path(source)
        where = str(path)
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FcmConfigError(f"FCM service account file {path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise FcmConfigError(
                f"FCM service account file {path} is not readable JSON: {exc}") from exc
    if not isinstance(info, dict):
        raise FcmConfigError(f"{where} is not a JSON object")
    missing = [key for key in _SERVICE_ACCOUNT_KEYS if not info.get(key)]
    if missing:
        raise FcmConfigError(
            f"{where} lacks {', '.join(missing)}; download a key for a service account "
            "from the Firebase console (Project settings > Service accounts)")
    if info["type"] != "service_account":
        raise FcmConfigError(f"{where} has type {info['type']!r}, expected 'service_account'")
    return info


@dataclass(frozen=True, slots=True)
class FcmSettings:
    """FCM configuration read from the environment.

    ``FCM_SERVICE_ACCOUNT_FILE`` (required) is the path of the service-account
    JSON key; ``FCM_TIMEOUT`` (optional, seconds, default 10) bounds each HTTP
    call, the OAuth token exchange included.
    """

    service_account_file: Path
    timeout: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FcmSettings:
        """Settings from ``environ`` (default ``os.environ``); FcmConfigError says what is wrong."""
        environ = os.environ if environ is None else environ
        raw_path = environ.get("FCM_SERVICE_ACCOUNT_FILE", "").strip()
        if not raw_path:
            raise FcmConfigError(
                "FCM_SERVICE_ACCOUNT_FILE is not set; point it at the service-account JSON key "
                "of the Firebase project that sends push notifications")
        path = Path(raw_path).expanduser()
        load_service_account(path)  # fail at start-up, not at the first send
        raw_timeout = environ.get("FCM_TIMEOUT", "").strip()
        timeout = 10.0
        if raw_timeout:
            try:
                timeout = float(raw_timeout)
            except ValueError:
                raise FcmConfigError(
                    f"FCM_TIMEOUT={raw_timeout!r} is not a number of seconds") from None
            if timeout <= 0:
                raise FcmConfigError(f"FCM_TIMEOUT={raw_timeout!r} must be positive")
        return cls(service_account_file=path, timeout=timeout)


def collapse_id(idempotency_key: str) -> str:
    """The short, stable form of an idempotency key used as collapse key, tag and collapse id.

    ``apns-collapse-id`` allows at most 64 bytes and collapse keys should be
    short, so the key is hashed: 32 hex characters, the same for every resend.
    """
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]


class FcmChannel:
    """Sends one notification per delivery to an FCM registration token.

    One named ``firebase_admin.App`` is created per channel; ``app_name`` must be
    unique in the process (two channels with different service accounts need two
    names). ``fcm_url`` replaces ``https://fcm.googleapis.com`` for this channel
    only (tests point it at a local peer). ``close()`` deletes the app.
    """

    name = ChannelName.FCM

    def __init__(self, service_account_info: Mapping[str, Any] | str | os.PathLike[str], *,
                 app_name: str = "herald", timeout: float = 10, fcm_url: str | None = None,
                 ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        info = load_service_account(service_account_info)
        self.project_id: str = info["project_id"]
        self.ttl_seconds = ttl_seconds
        try:
            firebase_admin.get_app(app_name)
        except ValueError:
            pass  # not taken: the normal case
        else:
            raise FcmConfigError(
                f"a Firebase app named {app_name!r} already exists in this process; "
                "close() the other FcmChannel or give this one another app_name")
        self._app = firebase_admin.initialize_app(
            credentials.Certificate(info),
            {"projectId": self.project_id, "httpTimeout": timeout},
            name=app_name,
        )
        try:
            self._configure_service(fcm_url)
        except Exception:
            firebase_admin.delete_app(self._app)
            raise

    @classmethod
    def from_settings(cls, settings: FcmSettings, **kwargs: Any) -> FcmChannel:
        """A channel built from :class:`FcmSettings`."""
        return cls(settings.service_account_file, timeout=settings.timeout, **kwargs)

    def _configure_service(self, fcm_url: str | None) -> None:
        service = messaging._get_messaging_service(self._app)
        if not hasattr(service, "_fcm_url") or not hasattr(service, "_client"):
            raise RuntimeError(
                f"firebase-admin {firebase_admin.__version__} changed its messaging service "
                "(no _fcm_url/_client); FcmChannel needs updating")
        if fcm_url is not None:
            service._fcm_url = fcm_url.rstrip("/") + _SEND_PATH.format(project_id=self.project_id)
        self.send_url: str = service._fcm_url
        # firebase-admin retries 500/503 four times with backoff and sleeps for any
        # Retry-After on 503, inside send(). The engine owns retries and backoff and
        # a worker must not sit on a lease meanwhile, so only a failed connect (the
        # request never left) is retried here. read=False (not 0) keeps a read
        # timeout a timeout instead of urllib3 turning it into MaxRetryError.
        adapter = requests.adapters.HTTPAdapter(max_retries=Retry(
            total=None, connect=1, read=False, status=0, other=0, redirect=0,
            status_forcelist=(), raise_on_status=False, allowed_methods=None))
        scheme, _, rest = self.send_url.partition("://")
        origin = f"{scheme}://{rest.split('/', 1)[0]}"
        service._client.session.mount(origin, adapter)

    def close(self) -> None:
        """Delete this channel's Firebase app; the name may then be used again."""
        if self._app is not None:
            firebase_admin.delete_app(self._app)
            self._app = None

    def __enter__(self) -> FcmChannel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def build(self, message: OutgoingMessage) -> messaging.Message:
        """The FCM message for ``message`` (public so that callers can inspect it)."""
        data = dict(message.data)
        # The engine's data names the type "message_type", which FCM reserves; here it
        # travels as herald_message_type (set below) instead.
        data.pop("message_type", None)
        bad = sorted(key for key in data
                     if key in _RESERVED_DATA_KEYS or key.startswith(_RESERVED_DATA_PREFIXES))
        if bad:
            raise ChannelError(ErrorKind.PERMANENT,
                               f"FCM reserves data keys {', '.join(bad)}")
        data[DATA_MESSAGE_TYPE] = message.message_type
        data[DATA_DELIVERY_ID] = str(message.delivery_id)
        if message.link:
            data[DATA_LINK] = message.link
        key = collapse_id(message.idempotency_key)
        expires = int(time.time()) + self.ttl_seconds
        return messaging.Message(
            token=message.address,
            notification=messaging.Notification(title=message.subject, body=message.text),
            data=data,
            android=messaging.AndroidConfig(
                collapse_key=key, priority="normal", ttl=self.ttl_seconds,
                # The tag makes a duplicate replace the notification already shown.
                notification=messaging.AndroidNotification(tag=key),
            ),
            apns=messaging.APNSConfig(headers={
                "apns-collapse-id": key,
                "apns-priority": "5",  # the APNs counterpart of "normal"
                "apns-expiration": str(expires),
            }),
        )

    def send(self, message: OutgoingMessage) -> Receipt:
        """Send ``message``; the receipt holds FCM's message name (``projects/.../messages/...``).

        Raises ChannelError: ADDRESS_DEAD when the token is unregistered, invalid
        or belongs to another sender; RETRYABLE for quota, outages, timeouts and
        transport failures (with ``retry_after`` when FCM sent one); PERMANENT
        otherwise.
        """
        if self._app is None:
            raise RuntimeError("FcmChannel is closed")
        if not message.address:
            raise ChannelError(ErrorKind.ADDRESS_DEAD, "no FCM registration token")
        fcm_message = self.build(message)
        try:
            name = messaging.send(fcm_message, app=self._app)
        except exceptions.FirebaseError as exc:
            raise classify(exc) from exc
        except google.auth.exceptions.RefreshError as exc:
            kind = ErrorKind.RETRYABLE if getattr(exc, "retryable", False) else ErrorKind.PERMANENT
            raise ChannelError(kind, f"FCM OAuth token refused: {exc}") from exc
        except google.auth.exceptions.TransportError as exc:
            raise ChannelError(ErrorKind.RETRYABLE,
                               f"FCM OAuth token endpoint unreachable: {exc}") from exc
        except ValueError as exc:
            # firebase-admin validates the message while encoding it.
            raise ChannelError(ErrorKind.PERMANENT, f"invalid FCM message: {exc}") from exc
        return Receipt(provider_message_id=name,
                       detail={"collapse_key": collapse_id(message.idempotency_key)})


def classify(exc: exceptions.FirebaseError) -> ChannelError:
    """Turn a firebase-admin error into a ChannelError; the reason starts with the FCM code."""
    body = _error_body(exc)
    fcm_code = _fcm_error_code(body) or exc.code
    status = exc.http_response.status_code if exc.http_response is not None else None
    reason = f"FCM {fcm_code}: {exc}"
    detail = {"fcm_error_code": fcm_code, "http_status": status}
    if isinstance(exc, messaging.UnregisteredError | messaging.SenderIdMismatchError):
        kind = ErrorKind.ADDRESS_DEAD
    elif isinstance(exc, exceptions.InvalidArgumentError):
        kind = ErrorKind.ADDRESS_DEAD if _token_rejected(exc, body) else ErrorKind.PERMANENT
    elif isinstance(exc, messaging.ThirdPartyAuthError):
        kind = ErrorKind.PERMANENT
    elif exc.code in _RETRYABLE_CODES:
        kind = ErrorKind.RETRYABLE
    else:
        kind = ErrorKind.PERMANENT
    retry_after = _retry_after(exc) if kind is ErrorKind.RETRYABLE else None
    return ChannelError(kind, reason, retry_after=retry_after, detail=detail)


def _error_body(exc: exceptions.FirebaseError) -> dict[str, Any]:
    response = exc.http_response
    if response is None:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _fcm_error_code(body: dict[str, Any]) -> str | None:
    for detail in body.get("details") or ():
        if isinstance(detail, dict) and detail.get("@type") == _FCM_ERROR_TYPE:
            return detail.get("errorCode")
    return None


def _token_rejected(exc: exceptions.FirebaseError, body: dict[str, Any]) -> bool:
    # FCM answers a malformed token with a plain INVALID_ARGUMENT; the field
    # violation names message.token, and the text says "registration token".
    for detail in body.get("details") or ():
        if isinstance(detail, dict) and detail.get("@type") == _BAD_REQUEST_TYPE:
            for violation in detail.get("fieldViolations") or ():
                if isinstance(violation, dict) and violation.get("field") == "message.token":
                    return True
    text = f"{body.get('message', '')} {exc}".lower()
    return "registration token" in text


def _retry_after(exc: exceptions.FirebaseError) -> float | None:
    response = exc.http_response
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
