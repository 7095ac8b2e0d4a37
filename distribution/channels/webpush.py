"""Web Push (RFC 8030, 8291, 8292) through pywebpush, signed with the instance's VAPID key.

The message's ``address`` is the browser's ``PushSubscription`` as JSON. The
push service replies 201 on acceptance; 404/410 mean the subscription is gone
and the engine prunes it. Three pywebpush habits shape this module: it writes
``aud`` and ``exp`` into the claims dict it is given (so each send builds a new
one), it has no timeout unless given one, and an unreachable endpoint raises
``requests`` exceptions rather than ``WebPushException``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid, VapidException
from pywebpush import WebPushException, webpush

from distribution.channels.base import (
    ChannelError,
    ChannelName,
    ErrorKind,
    OutgoingMessage,
    Receipt,
)
from distribution.vapid import VapidKeys

# Push services accept 4096 bytes of encrypted body; aes128gcm adds 86 bytes of
# header, a 16-byte tag and a padding delimiter. 3000 leaves room to spare.
MAX_PAYLOAD_BYTES = 3000
# RFC 8030 section 5.4: a Topic is at most 32 characters of the base64url alphabet.
_TOPIC_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
# RFC 8292 allows up to 24 h; 12 h keeps clear of clock skew at the push service.
VAPID_TOKEN_LIFETIME = 12 * 3600
_ELLIPSIS = "…"


def topic_for(idempotency_key: str) -> str:
    """A Web Push ``Topic`` for the key: the key itself when it is already a valid topic,
    otherwise 32 characters of its SHA-256 in base64url, so a resend replaces the
    undelivered original at the push service instead of duplicating it."""
    if _TOPIC_RE.fullmatch(idempotency_key):
        return idempotency_key
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:32]


def build_payload(message: OutgoingMessage, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """The compact JSON the service worker shows, at most ``limit`` bytes of UTF-8.

    Only the body is shortened (ending in an ellipsis): a cut URL or tag would
    break the click-through or the de-duplication in the browser.
    """
    fields: dict[str, Any] = {
        "title": message.subject,
        "body": message.text,
        "url": message.link,
        "tag": message.idempotency_key,
        "data": dict(message.data),
    }

    def encode(body: str) -> bytes:
        fields["body"] = body
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    full = encode(message.text)
    if len(full) <= limit:
        return full
    if len(encode(_ELLIPSIS)) > limit:
        raise ChannelError(ErrorKind.PERMANENT,
                           f"web push payload exceeds {limit} bytes even without its body",
                           detail={"limit": limit})
    # JSON escaping makes bytes per character uneven, so search for the longest prefix that fits.
    low, high = 0, len(message.text)
    while low < high:
        mid = (low + high + 1) // 2
        if len(encode(message.text[:mid] + _ELLIPSIS)) <= limit:
            low = mid
        else:
            high = mid - 1
    return encode(message.text[:low].rstrip() + _ELLIPSIS)


def parse_subscription(address: str, *, allow_http: bool = False) -> dict[str, Any]:
    """Check a PushSubscription JSON and return it as a dict.

    pywebpush checks little (a bad ``p256dh`` only fails deep in the encryption),
    so the endpoint URL, the P-256 point and the 16-byte auth secret are
    verified here; any fault raises ``ChannelError(ADDRESS_DEAD)`` because no
    retry will fix a broken subscription.
    """
    def dead(reason: str) -> ChannelError:
        return ChannelError(ErrorKind.ADDRESS_DEAD, f"malformed push subscription: {reason}")

    try:
        sub = json.loads(address)
    except (TypeError, ValueError) as exc:
        raise dead(f"not JSON ({exc})") from exc
    if not isinstance(sub, dict):
        raise dead("not a JSON object")
    endpoint = sub.get("endpoint")
    keys = sub.get("keys")
    if not isinstance(endpoint, str) or not endpoint:
        raise dead("no endpoint")
    parts = urlsplit(endpoint)
    schemes = ("https", "http") if allow_http else ("https",)
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise dead(f"endpoint has an invalid port: {endpoint!r}") from exc
    if parts.scheme not in schemes or not parts.hostname:
        raise dead(f"endpoint must be an {' or '.join(schemes)} URL: {endpoint!r}")
    if not isinstance(keys, dict):
        raise dead("no keys")
    p256dh = _b64url_decode(keys.get("p256dh"))
    auth = _b64url_decode(keys.get("auth"))
    if p256dh is None or len(p256dh) != 65 or p256dh[0] != 4:
        raise dead("keys.p256dh is not an uncompressed P-256 point in base64url")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError as exc:
        raise dead("keys.p256dh is not a point on P-256") from exc
    if auth is None or len(auth) != 16:
        raise dead("keys.auth is not a 16-byte secret in base64url")
    return {"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}


def origin_of(endpoint: str) -> str:
    """The endpoint's origin (scheme, host, non-default port): the VAPID ``aud`` claim."""
    parts = urlsplit(endpoint)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    port = parts.port
    if port is None or (scheme, port) in (("https", 443), ("http", 80)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class WebPushChannel:
    """Sends a message to one browser subscription.

    ``subject`` is the VAPID ``sub`` claim (``mailto:`` or an https URL) push
    services use to contact the sender. One ``requests.Session`` is shared by
    every send so connections to the same push service are reused; pass your
    own to configure proxies or adapters. ``allow_http`` accepts plain-http
    endpoints, which real browsers never hand out; it exists for local peers.
    """

    name = ChannelName.WEB_PUSH

    def __init__(self, keys: VapidKeys, subject: str, timeout: float = 10, ttl: int = 86400,
                 session: requests.Session | None = None, *, allow_http: bool = False) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive: a push without one can hang a worker")
        self.keys = keys
        self.subject = subject
        self.timeout = timeout
        self.ttl = ttl
        self.allow_http = allow_http
        self._owns_session = session is None
        self.session = session or requests.Session()
        self._vapid = Vapid(private_key=keys.private_key)
        try:
            # Fail at start-up, not on the first send, when the subject is unusable.
            self._vapid.sign({"sub": subject, "aud": "https://push.example"})
        except VapidException as exc:
            raise ValueError(f"VAPID subject must be mailto: or an https URL: {subject!r}") from exc

    def close(self) -> None:
        """Close the HTTP session if this channel created it."""
        if self._owns_session:
            self.session.close()

    def send(self, message: OutgoingMessage) -> Receipt:
        """Encrypt and post the message to the subscription's push service."""
        subscription = parse_subscription(message.address, allow_http=self.allow_http)
        endpoint = subscription["endpoint"]
        payload = build_payload(message)
        topic = topic_for(message.idempotency_key)
        # A fresh dict every time: pywebpush writes into the claims it is given.
        claims: dict[str, str | int] = {
            "sub": self.subject,
            "aud": origin_of(endpoint),
            "exp": int(time.time()) + VAPID_TOKEN_LIFETIME,
        }
        headers: dict[str, str | int | float] = {
            "Topic": topic,
            "Urgency": "normal",
            # RFC 8030 needs none, but some services (web-push-testing) ignore a body without it.
            "Content-Type": "application/octet-stream",
        }
        try:
            response = webpush(
                subscription_info=subscription,
                data=payload.decode("utf-8"),
                vapid_private_key=self._vapid,
                vapid_claims=claims,
                content_encoding="aes128gcm",
                timeout=self.timeout,
                ttl=self.ttl,
                headers=headers,
                requests_session=self.session,
            )
        except WebPushException as exc:
            raise _classify(exc, endpoint) from exc
        except requests.Timeout as exc:
            raise ChannelError(ErrorKind.RETRYABLE,
                               f"push service timed out after {self.timeout}s: {exc}",
                               detail={"endpoint_origin": claims["aud"]}) from exc
        except requests.RequestException as exc:
            raise ChannelError(ErrorKind.RETRYABLE, f"push service unreachable: {exc}",
                               detail={"endpoint_origin": claims["aud"]}) from exc
        except VapidException as exc:
            raise ChannelError(ErrorKind.PERMANENT, f"cannot sign VAPID token: {exc}") from exc
        assert isinstance(response, requests.Response)  # curl=False always returns a response
        return Receipt(
            provider_message_id=response.headers.get("Location"),
            detail={"status": response.status_code, "topic": topic, "ttl": self.ttl,
                    "payload_bytes": len(payload)},
        )


def _classify(exc: WebPushException, endpoint: str) -> ChannelError:
    status = exc.status_code
    response = exc.response
    text = (getattr(response, "text", "") or "").strip()[:500]
    detail: dict[str, Any] = {"status": status, "endpoint_origin": origin_of(endpoint)}
    if text:
        detail["response"] = text
    if status is None:
        # pywebpush raised before sending (e.g. it rejected the subscription itself).
        return ChannelError(ErrorKind.ADDRESS_DEAD, f"push subscription rejected: {exc.message}",
                            detail=detail)
    reason = f"push service answered {status}" + (f": {text}" if text else "")
    if status in (404, 410):
        return ChannelError(ErrorKind.ADDRESS_DEAD, reason, detail=detail)
    if status == 413:
        return ChannelError(ErrorKind.PERMANENT, f"payload too large; {reason}", detail=detail)
    if status == 429 or status >= 500:
        return ChannelError(ErrorKind.RETRYABLE, reason, detail=detail,
                            retry_after=parse_retry_after(exc.retry_after))
    # 400 malformed request, 401/403 bad or mismatched VAPID key, anything else: resending the
    # same request will not help.
    return ChannelError(ErrorKind.PERMANENT, reason, detail=detail)


def _b64url_decode(value: object) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
