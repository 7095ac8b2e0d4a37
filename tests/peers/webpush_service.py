"""A real Web Push service for tests: it checks what a push service checks and decrypts.

It listens on 127.0.0.1, accepts ``POST /push/<id>`` for subscriptions it
created, verifies the VAPID ``Authorization`` header (ES256 signature by the
``k`` key, ``aud`` equal to its own origin, ``exp`` in the future and at most
24 h ahead, ``sub`` a ``mailto:`` or https URL), the ``TTL`` and ``Topic``
headers and the 4096-byte limit, and decrypts the aes128gcm body with the
subscriber's private key, as a browser would. Accepted pushes land in
``received``; refused ones in ``rejected`` with the reason. Switches make the
next request(s) answer 404, 410, 413, 429 (with ``Retry-After``), 500, or stall.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAX_BODY_BYTES = 4096
MAX_TOKEN_LIFETIME = 24 * 3600
_TOPIC_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def b64url(data: bytes) -> str:
    """Unpadded base64url, the encoding of every key in Web Push."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Subscriber:
    """The browser's side of a subscription: its ECDH key and auth secret."""

    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    application_server_key: str | None = None

    @classmethod
    def generate(cls, application_server_key: str | None = None) -> Subscriber:
        """A new subscriber, as a browser creates one on ``pushManager.subscribe()``."""
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16),
                   application_server_key)

    def subscription(self, endpoint: str) -> dict[str, Any]:
        """The PushSubscription JSON (as a dict) the browser would hand to the server."""
        return {"endpoint": endpoint,
                "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth_secret)}}

    @property
    def p256dh(self) -> str:
        """The public key as the browser reports it in ``keys.p256dh``."""
        return b64url(self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


@dataclass
class ReceivedPush:
    """One push the service accepted, decrypted."""

    subscription_id: str
    headers: dict[str, str]  # lower-cased names
    claims: dict[str, Any]
    vapid_key: str
    payload: bytes

    def json(self) -> Any:
        """The decrypted payload parsed as JSON."""
        return json.loads(self.payload)


@dataclass
class _Canned:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stall: float = 0.0


class VerificationError(Exception):
    """The request would be refused by a real push service."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PushService:
    """A push service on 127.0.0.1; use as a context manager or call start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._canned: deque[_Canned] = deque()
        self._release_stalls = threading.Event()
        self.subscribers: dict[str, Subscriber] = {}
        self.expired: set[str] = set()
        self.received: list[ReceivedPush] = []
        self.rejected: list[tuple[int, str]] = []
        self.requests = 0

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``, which every VAPID ``aud`` must equal."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> PushService:
        """Serve in a background thread."""
        # A short poll interval keeps stop() (and so every test's teardown) quick.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=f"push-service {self.origin}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release stalled requests and close the socket."""
        self._release_stalls.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> PushService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- subscriptions -------------------------------------------------------------------

    def subscription(self, subscription_id: str | None = None,
                     application_server_key: str | None = None) -> dict[str, Any]:
        """Create a subscriber and return its PushSubscription JSON (as a dict).

        With ``application_server_key`` the service, like a real one, refuses
        pushes signed by any other VAPID key (403).
        """
        subscription_id = subscription_id or uuid.uuid4().hex
        subscriber = Subscriber.generate(application_server_key)
        self.subscribers[subscription_id] = subscriber
        return subscriber.subscription(f"{self.origin}/push/{subscription_id}")

    # -- switches ------------------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1, retry_after: str | int | None = None,
                  body: str = "") -> None:
        """Answer the next ``count`` pushes with ``status`` (404, 410, 413, 429, 500 ...)."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        with self._lock:
            for _ in range(count):
                self._canned.append(_Canned(status, headers, body.encode()))

    def stall_next(self, seconds: float, count: int = 1) -> None:
        """Hold the next ``count`` pushes for ``seconds`` before handling them normally."""
        with self._lock:
            for _ in range(count):
                self._canned.append(_Canned(0, stall=seconds))

    def expire(self, subscription_id: str) -> None:
        """From now on answer 410 Gone to pushes for this subscription (the browser dropped it)."""
        self.expired.add(subscription_id)

    def clear_failures(self) -> None:
        """Forget the canned answers not given yet: the service is healthy again."""
        with self._lock:
            self._canned.clear()

    def _next_canned(self) -> _Canned | None:
        with self._lock:
            return self._canned.popleft() if self._canned else None

    # -- verification --------------------------------------------------------------------

    def _accept(self, path: str, headers: dict[str, str], body: bytes) -> ReceivedPush:
        match = re.fullmatch(r"/push/([^/]+)", path)
        if not match or match.group(1) not in self.subscribers:
            raise VerificationError(404, "no such subscription")
        subscription_id = match.group(1)
        if subscription_id in self.expired:
            raise VerificationError(410, "push subscription has unsubscribed or expired")
        subscriber = self.subscribers[subscription_id]
        claims, key = self._verify_vapid(headers.get("authorization", ""))
        if subscriber.application_server_key and key != subscriber.application_server_key:
            raise VerificationError(403, "VAPID key differs from the applicationServerKey")
        ttl = headers.get("ttl", "")
        if not ttl.isdigit():
            raise VerificationError(400, f"TTL header missing or invalid: {ttl!r}")
        topic = headers.get("topic")
        if topic is not None and not _TOPIC_RE.fullmatch(topic):
            raise VerificationError(400, f"Topic must be <= 32 base64url characters: {topic!r}")
        if headers.get("content-encoding") != "aes128gcm":
            raise VerificationError(400, "Content-Encoding must be aes128gcm")
        if len(body) > MAX_BODY_BYTES:
            raise VerificationError(413, f"body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
        try:
            payload = http_ece.decrypt(body, private_key=subscriber.private_key,
                                       auth_secret=subscriber.auth_secret, version="aes128gcm")
        except Exception as exc:  # http_ece raises several types; any is a refusal
            raise VerificationError(400, f"cannot decrypt: {exc!r}") from exc
        return ReceivedPush(subscription_id, headers, claims, key, payload)

    def _verify_vapid(self, authorization: str) -> tuple[dict[str, Any], str]:
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise VerificationError(401, f"Authorization is not 'vapid t=..., k=...': "
                                         f"{authorization[:40]!r}")
        fields = dict(part.strip().partition("=")[::2] for part in params.split(","))
        token, key = fields.get("t", ""), fields.get("k", "")
        try:
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), b64url_decode(key))
            header_b64, claims_b64, signature_b64 = token.split(".")
            header = json.loads(b64url_decode(header_b64))
            claims = json.loads(b64url_decode(claims_b64))
            signature = b64url_decode(signature_b64)
        except ValueError as exc:
            raise VerificationError(401, f"unreadable VAPID token or key: {exc}") from exc
        if header.get("alg") != "ES256":
            raise VerificationError(401, f"JWT alg must be ES256, not {header.get('alg')!r}")
        if len(signature) != 64:
            raise VerificationError(401, "ES256 signature must be 64 bytes (r || s)")
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                   int.from_bytes(signature[32:], "big"))
        try:
            public_key.verify(der, f"{header_b64}.{claims_b64}".encode("ascii"),
                              ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise VerificationError(401, "VAPID signature does not verify with k") from exc
        if claims.get("aud") != self.origin:
            raise VerificationError(401, f"aud {claims.get('aud')!r} is not {self.origin!r}")
        exp, now = claims.get("exp"), time.time()
        if not isinstance(exp, int) or exp <= now:
            raise VerificationError(401, f"exp {exp!r} is missing or in the past")
        if exp > now + MAX_TOKEN_LIFETIME:
            raise VerificationError(401, f"exp {exp} is more than 24 h ahead")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            raise VerificationError(401, f"sub must be mailto: or https:, not {sub!r}")
        return claims, key


def _handler_for(service: PushService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so the channel's session reuse is exercised

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            with service._lock:
                service.requests += 1
            canned = service._next_canned()
            if canned is not None and canned.stall:
                service._release_stalls.wait(canned.stall)
                canned = None
            if canned is not None:
                self._reply(canned.status, canned.headers, canned.body)
                return
            try:
                push = service._accept(self.path, headers, body)
            except VerificationError as exc:
                with service._lock:
                    service.rejected.append((exc.status, exc.reason))
                self._reply(exc.status, {}, exc.reason.encode())
                return
            with service._lock:
                service.received.append(push)
            self._reply(201, {"Location": f"{service.origin}/message/{uuid.uuid4().hex}"}, b"")

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing left to tell it

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


# Registered under their fixture names but defined under other Python names, so a test module
# can import them without its parameters shadowing the import (ruff F811).
@pytest.fixture(name="push_service_factory")
def push_service_factory_fixture() -> Iterator[Callable[[], PushService]]:
    """Start as many push services as a test needs (each on its own port); all stop after."""
    started: list[PushService] = []

    def start() -> PushService:
        service = PushService().start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture(name="push_service")
def push_service_fixture(push_service_factory: Callable[[], PushService]) -> PushService:
    """One running push service."""
    return push_service_factory()
