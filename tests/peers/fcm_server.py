"""A local stand-in for Google's OAuth2 token endpoint and the FCM HTTP v1 API.

firebase-admin has no messaging emulator, so this server speaks just enough of
both protocols for the real client stack (firebase-admin, google-auth,
requests) to run unchanged against it:

* ``POST /token``: the OAuth2 JWT-bearer grant. The assertion's RS256 signature
  is checked against the key of the service account that signed it (made by
  :meth:`FcmServer.service_account_info`), as are ``iss``, ``aud``, ``exp`` and
  ``scope``. Note that google-auth always sets ``aud`` to Google's endpoint
  ``https://oauth2.googleapis.com/token``, whatever the key's ``token_uri``.
* ``POST /v1/projects/<project>/messages:send``: needs a bearer token issued
  above for a service account of that project, checks the body's shape
  (``message.token``, notification, data values all strings, no reserved
  data keys, android/apns blocks) and records it.
* ``GET /v1/projects/-/serviceAccounts/<email>/allowedLocations``: google-auth's
  regional-access-boundary lookup, answered so that it never leaves the machine.

Errors are Google API error bodies; :meth:`FcmServer.fail_next` queues them.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import re
import secrets
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# FCM v1 accepts either scope; firebase-admin asks for cloud-platform (among others).
MESSAGING_SCOPES = frozenset({
    "https://www.googleapis.com/auth/firebase.messaging",
    "https://www.googleapis.com/auth/cloud-platform",
})
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
_SEND_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
_RAB_PATH = re.compile(r"^/v1/projects/-/serviceAccounts/(?P<email>[^/]+)/allowedLocations$")
_DURATION = re.compile(r"^\d+(\.\d{1,9})?s$")
_RESERVED_DATA_KEYS = frozenset({"from", "message_type", "notification"})

# status, canonical status, FCM error code (or None), message
FAILURES: dict[str, tuple[int, str, str | None, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                         "Request contains an invalid argument."),
    "INVALID_TOKEN": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                      "The registration token is not a valid FCM registration token"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH",
                           "SenderId mismatch"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED",
                       "Quota exceeded for quota metric 'Send messages'."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR",
                               "Auth error from APNS or Web Push Service"),
}


@functools.cache
def _signing_key() -> rsa.RSAPrivateKey:
    # Generating a 2048-bit key costs about 0.1 s; accounts differ by email, so one
    # key per test process keeps the suite fast without weakening any check.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class ServiceAccount:
    """A service account the server knows: its project and public key."""

    project_id: str
    client_email: str
    public_key: rsa.RSAPublicKey


@dataclass
class ReceivedMessage:
    """One accepted ``messages:send`` call."""

    project: str
    message: dict[str, Any]
    headers: dict[str, str]
    name: str
    validate_only: bool = False


@dataclass
class _Failure:
    code: str
    retry_after: str | None
    delay: float = 0.0


@dataclass
class FcmServer:
    """The peer's state and switches; ``url`` is its root (``http://127.0.0.1:<port>``)."""

    received: list[ReceivedMessage] = field(default_factory=list)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    send_attempts: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    boundary_lookups: list[str] = field(default_factory=list)
    url: str = ""
    _accounts: dict[str, ServiceAccount] = field(default_factory=dict)
    _tokens: dict[str, tuple[ServiceAccount, float]] = field(default_factory=dict)
    _failures: deque[_Failure] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _connections: set[socket.socket] = field(default_factory=set)

    @property
    def token_uri(self) -> str:
        """Where service accounts made here exchange their JWT for a token."""
        return f"{self.url}/token"

    def service_account_info(self, project_id: str = "herald-test", *,
                             client_email: str | None = None) -> dict[str, str]:
        """A new service account (own email, shared RSA key) whose ``token_uri`` is this server."""
        key = _signing_key()
        email = client_email or f"sa-{secrets.token_hex(4)}@{project_id}.iam.gserviceaccount.com"
        with self._lock:
            self._accounts[email] = ServiceAccount(project_id, email, key.public_key())
        pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": secrets.token_hex(20),
            "private_key": pem,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**20)),
            "auth_uri": f"{self.url}/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": f"{self.url}/certs",
            "universe_domain": "googleapis.com",
        }

    def fail_next(self, code: str, *, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` send requests with the error ``code`` (a FAILURES key)."""
        if code not in FAILURES:
            raise ValueError(f"unknown failure {code!r}; pick one of {sorted(FAILURES)}")
        with self._lock:
            self._failures.extend(_Failure(code, retry_after) for _ in range(times))

    def delay_next(self, seconds: float) -> None:
        """Let the next send request wait ``seconds`` before it is answered normally."""
        with self._lock:
            self._failures.append(_Failure("", None, seconds))

    def revoke_tokens(self) -> None:
        """Forget every access token issued, as if they had all expired."""
        with self._lock:
            self._tokens.clear()

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1 in a daemon thread."""
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        # A short poll interval keeps shutdown (once per test) quick.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        name="fcm-peer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (tests use this for "server down"); safe to call twice."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        # Kept-alive connections would otherwise go on being served.
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    # -- request handling (called from the server's threads) --

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        def refuse(why: str) -> tuple[int, dict[str, Any]]:
            return 400, {"error": "invalid_grant", "error_description": why}

        if form.get("grant_type") != JWT_BEARER:
            return 400, {"error": "unsupported_grant_type"}
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            return refuse(f"malformed assertion: {exc}")
        with self._lock:
            account = self._accounts.get(unverified.get("iss", ""))
        if account is None:
            return refuse("unknown service account")
        try:
            claims = jwt.decode(assertion, account.public_key, algorithms=["RS256"],
                                audience=GOOGLE_TOKEN_AUDIENCE, issuer=account.client_email,
                                options={"require": ["iss", "aud", "iat", "exp"]})
        except jwt.PyJWTError as exc:
            return refuse(f"invalid JWT: {exc}")
        scopes = set(str(claims.get("scope", "")).split())
        if not scopes & MESSAGING_SCOPES:
            return refuse(f"scope {claims.get('scope')!r} does not allow FCM")
        access_token = "ya29.peer-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[access_token] = (account, time.time() + 3600)
            self.token_requests.append(claims)
        return 200, {"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"}

    def _account_for(self, authorization: str) -> ServiceAccount | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None or entry[1] < time.time():
            return None
        return entry[0]

    def _send(self, project: str, headers: dict[str, str],
              raw: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        account = self._account_for(headers.get("authorization", ""))
        if account is None:
            return _google_error(401, "UNAUTHENTICATED",
                                 "Request had invalid authentication credentials.")
        if account.project_id != project:
            return _google_error(403, "PERMISSION_DENIED",
                                 f"Permission denied on project {project}")
        with self._lock:
            self.send_attempts.append(project)
            failure = self._failures.popleft() if self._failures else None
        if failure is not None and failure.delay:
            time.sleep(failure.delay)
            failure = None
        if failure is not None:
            return _scripted_error(failure)
        try:
            body = json.loads(raw)
        except ValueError:
            return _google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        problem = _shape_problem(body)
        if problem is not None:
            with self._lock:
                self.rejected.append(problem[1])
            return _google_error(400, "INVALID_ARGUMENT", problem[1], field=problem[0])
        name = f"projects/{project}/messages/0:{next(self._ids)}%{secrets.token_hex(8)}"
        with self._lock:
            self.received.append(ReceivedMessage(project, body["message"], headers, name,
                                                 bool(body.get("validate_only"))))
        return 200, {"name": name}, {}


def _google_error(status: int, canonical: str, message: str, *, fcm_code: str | None = None,
                  field: str | None = None,
                  headers: dict[str, str] | None = None
                  ) -> tuple[int, dict[str, Any], dict[str, str]]:
    details: list[dict[str, Any]] = []
    if fcm_code:
        details.append({"@type": FCM_ERROR_TYPE, "errorCode": fcm_code})
    if field:
        details.append({"@type": BAD_REQUEST_TYPE,
                        "fieldViolations": [{"field": field, "description": message}]})
    error: dict[str, Any] = {"code": status, "message": message, "status": canonical}
    if details:
        error["details"] = details
    return status, {"error": error}, headers or {}


def _scripted_error(failure: _Failure) -> tuple[int, dict[str, Any], dict[str, str]]:
    status, canonical, fcm_code, message = FAILURES[failure.code]
    headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
    field = "message.token" if failure.code == "INVALID_TOKEN" else None
    return _google_error(status, canonical, message, fcm_code=fcm_code, field=field,
                         headers=headers)


def _shape_problem(body: Any) -> tuple[str, str] | None:
    """(field, description) of the first thing FCM would reject, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        return "message", "message is required"
    if set(body) - {"message", "validate_only"}:
        return "", f"unknown fields {sorted(set(body) - {'message', 'validate_only'})}"
    message = body["message"]
    targets = [key for key in ("token", "topic", "condition") if key in message]
    if targets != ["token"]:
        return "message", f"exactly one target expected, a token; got {targets}"
    if not isinstance(message["token"], str) or not message["token"].strip():
        return "message.token", "The registration token is not a valid FCM registration token"
    notification = message.get("notification", {})
    if not isinstance(notification, dict) or not all(
            isinstance(notification.get(key, ""), str) for key in ("title", "body")):
        return "message.notification", "title and body must be strings"
    data = message.get("data", {})
    if not isinstance(data, dict):
        return "message.data", "data must be a map"
    for key, value in data.items():
        if not isinstance(value, str):
            return f"message.data[{key}]", "data values must be strings"
        if key in _RESERVED_DATA_KEYS or key.startswith(("google", "gcm")):
            return f"message.data[{key}]", f"Invalid data payload key: {key}"
    size = len(json.dumps({"notification": notification, "data": data}).encode())
    if size > 4096:
        return "message", f"Message is too big ({size} bytes, limit 4096)"
    android = message.get("android", {})
    if android:
        if android.get("priority", "normal").lower() not in {"normal", "high"}:
            return "message.android.priority", "priority must be normal or high"
        if "ttl" in android and not _DURATION.match(str(android["ttl"])):
            return "message.android.ttl", f"Invalid duration {android['ttl']!r}"
        if not isinstance(android.get("collapse_key", ""), str):
            return "message.android.collapse_key", "collapse_key must be a string"
    headers = message.get("apns", {}).get("headers", {})
    if not all(isinstance(value, str) for value in headers.values()):
        return "message.apns.headers", "APNs header values must be strings"
    if len(headers.get("apns-collapse-id", "").encode()) > 64:
        return "message.apns.headers", "apns-collapse-id is longer than 64 bytes"
    return None


def _handler_for(server: FcmServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with server._lock:
                server._connections.add(self.connection)

        def finish(self) -> None:
            super().finish()
            with server._lock:
                server._connections.discard(self.connection)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reply(self, status: int, payload: dict[str, Any],
                   headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            raw = self._body()
            if path == "/token":
                form = dict(urllib.parse.parse_qsl(raw.decode()))
                self._reply(*server._token(form))
                return
            match = _SEND_PATH.match(path)
            if match:
                headers = {name.lower(): value for name, value in self.headers.items()}
                self._reply(*server._send(match["project"], headers, raw))
                return
            self._reply(*_google_error(404, "NOT_FOUND", f"no such method {path}")[:2])

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            match = _RAB_PATH.match(path)
            if match and server._account_for(self.headers.get("Authorization", "")):
                with server._lock:
                    server.boundary_lookups.append(urllib.parse.unquote(match["email"]))
                self._reply(200, {"locations": ["europe-west1"], "encodedLocations": "0x1"})
                return
            self._reply(*_google_error(404, "NOT_FOUND", f"no such resource {path}")[:2])

    return Handler


@pytest.fixture
def fcm_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FcmServer]:
    """A running FcmServer, stopped afterwards.

    google-auth (2.62) looks up a "regional access boundary" at
    iamcredentials.googleapis.com in a background thread after each token
    refresh; the lookup URL is pointed here so tests never reach Google.
    """
    server = FcmServer()
    server.start()
    from google.auth import _regional_access_boundary_utils as rab

    monkeypatch.setattr(
        rab, "get_service_account_rab_endpoint",
        lambda email: f"{server.url}/v1/projects/-/serviceAccounts/{email}/allowedLocations",
        raising=False)
    try:
        yield server
    finally:
        server.stop()
