"""Local push services for the demo: web push and mobile push land in the instance folder.

Nothing leaves the machine. Two small HTTP servers on loopback stand in for a
browser vendor's Web Push service and for Google's FCM HTTP v1 API, and check
what the real ones check:

* Web Push (``POST /push/<id>``): the VAPID ``Authorization`` header (ES256
  signature by its ``k`` key, ``aud`` equal to the sink's origin, ``exp`` in the
  next 24 h, ``sub`` a ``mailto:`` or https URL), then the aes128gcm body is
  decrypted with the demo subscriber's key, as the browser would, and kept as
  JSON in ``instance/demo-push/``: what the customer's browser would have shown.
* FCM: ``POST /token`` (the OAuth2 JWT-bearer grant, the assertion checked
  against the demo service account's public key) and
  ``POST /v1/projects/<project>/messages:send`` (bearer token required, the
  device token must be one the demo registered); messages are kept as JSON in
  ``instance/demo-app-push/``.

The demo's secrets (subscriber keys, device tokens, the service account's RSA
key) and the sinks' ports are kept in the instance folder (mode 0600), so a
restarted demo keeps working with the subscriptions it seeded.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import secrets
import socket
import tempfile
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

log = logging.getLogger(__name__)

STATE_FILE = "demo-push-sinks.json"
SERVICE_ACCOUNT_FILE = "demo-fcm-service-account.json"
WEB_PUSH_FOLDER = "demo-push"
APP_PUSH_FOLDER = "demo-app-push"
DEMO_PROJECT = "helder-demo"
DEMO_CLIENT_EMAIL = f"herald-demo@{DEMO_PROJECT}.iam.gserviceaccount.com"
HOST = "127.0.0.1"

MAX_PUSH_BODY = 4096  # what real push services accept
MAX_VAPID_LIFETIME = 24 * 3600  # RFC 8292
# google-auth always addresses its assertion to Google's endpoint, whatever the token_uri.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MESSAGING_SCOPES = frozenset({"https://www.googleapis.com/auth/firebase.messaging",
                              "https://www.googleapis.com/auth/cloud-platform"})
ACCESS_TOKEN_LIFETIME = 3600
_SEND_PATH = re.compile(r"/v1/projects/(?P<project>[^/]+)/messages:send")
_LOOKUP_PATH = re.compile(r"/v1/projects/-/serviceAccounts/[^/]+/allowedLocations")
_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


def b64url(data: bytes) -> str:
    """Unpadded base64url, the encoding Web Push and JWTs use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by the owner only."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        os.chmod(tmp, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class DemoPushState:
    """The demo's push secrets and sink ports, kept in ``instance/demo-push-sinks.json``.

    Seeding creates subscriptions and device tokens here before the sinks run;
    the sinks read them back. A port is chosen once and kept, because the web
    push endpoints stored in the database name it.
    """

    def __init__(self, instance_path: Path) -> None:
        self.instance_path = Path(instance_path)
        self.path = self.instance_path / STATE_FILE
        self._lock = threading.RLock()
        self._data: dict[str, Any] = {"ports": {}, "subscribers": {}, "devices": []}
        self.reload()

    def reload(self) -> None:
        """Read the file again (another process may have seeded meanwhile)."""
        with self._lock:
            if self.path.exists():
                self._data = {**self._data, **json.loads(self.path.read_text("utf-8"))}

    def _save(self) -> None:
        self.instance_path.mkdir(parents=True, exist_ok=True)
        _write_private(self.path, json.dumps(self._data, indent=1))

    # -- ports ------------------------------------------------------------------------

    def port(self, sink: str) -> int:
        """The port ``sink`` listens on, chosen (free, on loopback) on first use and kept."""
        with self._lock:
            port = self._data["ports"].get(sink)
            if port is None:
                port = _free_port()
                self.set_port(sink, port)
            return port

    def set_port(self, sink: str, port: int) -> None:
        """Remember that ``sink`` now listens on ``port``."""
        with self._lock:
            self._data["ports"][sink] = port
            self._save()

    @property
    def web_push_origin(self) -> str:
        """``http://127.0.0.1:<port>`` of the web push sink: the origin of every demo endpoint."""
        return f"http://{HOST}:{self.port('web_push')}"

    # -- web push subscribers -----------------------------------------------------------

    def new_subscription(self) -> dict[str, Any]:
        """Subscribe a new demo browser; returns its PushSubscription JSON as a dict."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        auth_secret = os.urandom(16)
        subscription_id = secrets.token_hex(12)
        scalar = private_key.private_numbers().private_value.to_bytes(32, "big")
        with self._lock:
            self._data["subscribers"][subscription_id] = {"d": b64url(scalar),
                                                          "auth": b64url(auth_secret)}
            self._save()
        return self.subscription(subscription_id)

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        """The PushSubscription JSON (as a dict) of a subscriber, at the sink's current origin."""
        private_key, auth_secret = self.subscriber(subscription_id)
        public = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": f"{self.web_push_origin}/push/{subscription_id}",
                "keys": {"p256dh": b64url(public), "auth": b64url(auth_secret)}}

    def subscriber(self, subscription_id: str) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
        """The browser-side private key and auth secret of a subscriber; KeyError if unknown."""
        with self._lock:
            entry = self._data["subscribers"].get(subscription_id)
            if entry is None:
                self.reload()
                entry = self._data["subscribers"][subscription_id]
        key = ec.derive_private_key(int.from_bytes(b64url_decode(entry["d"]), "big"),
                                    ec.SECP256R1())
        return key, b64url_decode(entry["auth"])

    def subscription_ids(self) -> list[str]:
        """Every demo subscriber's id."""
        with self._lock:
            return list(self._data["subscribers"])

    # -- mobile devices -----------------------------------------------------------------

    def new_device_token(self) -> str:
        """Register a new demo phone; returns its FCM registration token."""
        token = f"demo-device:{secrets.token_urlsafe(48)}"
        with self._lock:
            self._data["devices"].append(token)
            self._save()
        return token

    def has_device(self, token: str) -> bool:
        """True when ``token`` was registered by the demo."""
        with self._lock:
            if token not in self._data["devices"]:
                self.reload()
            return token in self._data["devices"]

    # -- the FCM service account --------------------------------------------------------

    def service_account_key(self) -> rsa.RSAPrivateKey:
        """The demo service account's RSA key, generated once."""
        with self._lock:
            pem = self._data.get("service_account_key")
            if pem is None:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                pem = key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode("ascii")
                self._data["service_account_key"] = pem
                self._save()
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    def write_service_account(self, token_uri: str) -> Path:
        """Write the service-account JSON (0600) whose ``token_uri`` is the FCM sink."""
        key = self.service_account_key()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
        info = {
            "type": "service_account",
            "project_id": DEMO_PROJECT,
            "private_key_id": "demo",
            "private_key": pem,
            "client_email": DEMO_CLIENT_EMAIL,
            "client_id": "1",
            "token_uri": token_uri,
            "universe_domain": "googleapis.com",
        }
        path = self.instance_path / SERVICE_ACCOUNT_FILE
        _write_private(path, json.dumps(info, indent=1))
        return path


class _RefusedError(Exception):
    def __init__(self, status: int, reason: str, fcm_code: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.fcm_code = status, reason, fcm_code


class _Sink:
    """An HTTP server on loopback, on the port the state keeps for it (or a new one)."""

    name = ""
    title = ""

    def __init__(self, state: DemoPushState) -> None:
        self.state = state
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "start() the sink first"
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> _Sink:
        """Listen on the kept port, or on a new one (then kept) when it is taken."""
        handler = _handler_for(self)
        try:
            self._server = ThreadingHTTPServer((HOST, self.state.port(self.name)), handler)
        except OSError:
            self._server = ThreadingHTTPServer((HOST, 0), handler)
            self.state.set_port(self.name, self._server.server_address[1])
            log.info("demo %s sink moved to %s", self.name, self.origin)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        name=f"demo-{self.name}-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def handle_post(self, path: str, headers: dict[str, str],
                    body: bytes) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def handle_get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return 404, {}, b""


def _handler_for(sink: _Sink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the channels' shared sessions expect

        def _reply(self, result: tuple[int, dict[str, str], bytes]) -> None:
            status, headers, body = result
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            path = urllib.parse.urlsplit(self.path).path
            self._reply(sink.handle_post(path, headers, body))

        def do_GET(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            self._reply(sink.handle_get(urllib.parse.urlsplit(self.path).path, headers))

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("demo %s sink: " + format, sink.name, *args)

    return Handler


def _keep(folder: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as a new JSON file in ``folder``; names sort by arrival."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = folder / f"{stamp}-{secrets.token_hex(4)}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)  # readers never see half a file
    return path


class WebPushSink(_Sink):
    """A Web Push service for the demo's subscribers; decrypted pushes go to ``demo-push/``."""

    name = "web_push"
    title = "Browser notifications"

    @property
    def folder(self) -> Path:
        """Where accepted notifications are kept, one JSON file each."""
        return self.state.instance_path / WEB_PUSH_FOLDER

    def handle_post(self, path: str, headers: dict[str, str],
                    body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Check, decrypt and keep one push; 201 on acceptance."""
        try:
            record = self._accept(path, headers, body)
        except _RefusedError as exc:
            log.warning("demo web push refused (%s): %s", exc.status, exc.reason)
            return exc.status, {"Content-Type": "text/plain"}, exc.reason.encode()
        kept = _keep(self.folder, record)
        return 201, {"Location": f"{self.origin}/message/{kept.stem}"}, b""

    def _accept(self, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        match = re.fullmatch(r"/push/([A-Za-z0-9_-]+)", path)
        if match is None:
            raise _RefusedError(404, "no such subscription")
        subscription_id = match.group(1)
        try:
            private_key, auth_secret = self.state.subscriber(subscription_id)
        except KeyError:
            raise _RefusedError(410, "this subscription is gone") from None
        claims = self._verify_vapid(headers.get("authorization", ""))
        if headers.get("content-encoding") != "aes128gcm":
            raise _RefusedError(400, "Content-Encoding must be aes128gcm")
        if not headers.get("ttl", "").isdigit():
            raise _RefusedError(400, "TTL header missing or invalid")
        if len(body) > MAX_PUSH_BODY:
            raise _RefusedError(413, f"body of {len(body)} bytes exceeds {MAX_PUSH_BODY}")
        try:
            payload = http_ece.decrypt(body, private_key=private_key, auth_secret=auth_secret,
                                       version="aes128gcm")
        except Exception as exc:  # http_ece raises several types; each one is a refusal
            raise _RefusedError(400, f"cannot decrypt the payload: {exc}") from exc
        try:
            notification: Any = json.loads(payload)
        except ValueError:
            notification = payload.decode("utf-8", "replace")
        return {
            "received_at": datetime.now(UTC).isoformat(),
            "subscription_id": subscription_id,
            "topic": headers.get("topic"),
            "urgency": headers.get("urgency"),
            "ttl": int(headers["ttl"]),
            "vapid_subject": claims.get("sub"),
            "notification": notification,
        }

    def _verify_vapid(self, authorization: str) -> dict[str, Any]:
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise _RefusedError(401, "Authorization must be 'vapid t=..., k=...'")
        fields = dict(part.strip().partition("=")[::2] for part in params.split(","))
        try:
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), b64url_decode(fields.get("k", "")))
            header_b64, claims_b64, signature_b64 = fields.get("t", "").split(".")
            header = json.loads(b64url_decode(header_b64))
            claims = json.loads(b64url_decode(claims_b64))
            signature = b64url_decode(signature_b64)
        except ValueError as exc:
            raise _RefusedError(401, f"unreadable VAPID token or key: {exc}") from exc
        if header.get("alg") != "ES256" or len(signature) != 64:
            raise _RefusedError(401, "the VAPID token must be signed with ES256")
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                   int.from_bytes(signature[32:], "big"))
        try:
            public_key.verify(der, f"{header_b64}.{claims_b64}".encode("ascii"),
                              ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise _RefusedError(401, "the VAPID signature does not verify with k") from None
        if claims.get("aud") != self.origin:
            raise _RefusedError(401, f"aud {claims.get('aud')!r} is not {self.origin!r}")
        exp, now = claims.get("exp"), time.time()
        if not isinstance(exp, int) or not now < exp <= now + MAX_VAPID_LIFETIME:
            raise _RefusedError(401, f"exp {exp!r} is not within the next 24 hours")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            raise _RefusedError(401, f"sub must be a mailto: or https: URL, not {sub!r}")
        return claims


class FcmSink(_Sink):
    """Google's OAuth token endpoint and FCM's send method for the demo's phones."""

    name = "fcm"
    title = "App notifications"

    def __init__(self, state: DemoPushState) -> None:
        super().__init__(state)
        self._tokens: dict[str, float] = {}  # access token -> expiry
        self._tokens_lock = threading.Lock()
        self._public_key = state.service_account_key().public_key()

    @property
    def folder(self) -> Path:
        """Where accepted messages are kept, one JSON file each."""
        return self.state.instance_path / APP_PUSH_FOLDER

    @property
    def token_uri(self) -> str:
        """The OAuth2 token endpoint service accounts of the demo use."""
        return f"{self.origin}/token"

    def start(self) -> FcmSink:
        """Listen, and (re)write the service-account file so its ``token_uri`` is this sink."""
        super().start()
        self.service_account_file = self.state.write_service_account(self.token_uri)
        return self

    def handle_post(self, path: str, headers: dict[str, str],
                    body: bytes) -> tuple[int, dict[str, str], bytes]:
        """The token exchange or one ``messages:send``."""
        try:
            if path == "/token":
                reply = self._token(dict(urllib.parse.parse_qsl(body.decode("utf-8"))))
            elif match := _SEND_PATH.fullmatch(path):
                reply = self._send(match["project"], headers, body)
            else:
                raise _RefusedError(404, f"no such method {path}")
        except _RefusedError as exc:
            log.warning("demo FCM refused (%s): %s", exc.status, exc.reason)
            if path == "/token":
                return _json(exc.status, {"error": "invalid_grant",
                                          "error_description": exc.reason})
            return _json(exc.status, _google_error(exc))
        return _json(200, reply)

    def handle_get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """google-auth's regional access boundary lookup, answered here (see keep_lookups_local)."""
        if _LOOKUP_PATH.fullmatch(path) and self._authorised(headers):
            return _json(200, {"locations": [], "encodedLocations": "0x0"})
        return _json(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": path}})

    def _token(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("grant_type") != JWT_BEARER:
            raise _RefusedError(400, "only the JWT-bearer grant is supported")
        claims = self._verify_assertion(form.get("assertion", ""))
        if not set(str(claims.get("scope", "")).split()) & MESSAGING_SCOPES:
            raise _RefusedError(400, f"scope {claims.get('scope')!r} does not allow FCM")
        access_token = "demo-" + secrets.token_urlsafe(32)
        with self._tokens_lock:
            self._tokens[access_token] = time.time() + ACCESS_TOKEN_LIFETIME
        return {"access_token": access_token, "expires_in": ACCESS_TOKEN_LIFETIME - 1,
                "token_type": "Bearer"}

    def _verify_assertion(self, assertion: str) -> dict[str, Any]:
        try:
            header_b64, claims_b64, signature_b64 = assertion.split(".")
            header = json.loads(b64url_decode(header_b64))
            claims = json.loads(b64url_decode(claims_b64))
            signature = b64url_decode(signature_b64)
        except ValueError as exc:
            raise _RefusedError(400, f"malformed assertion: {exc}") from exc
        if header.get("alg") != "RS256":
            raise _RefusedError(400, "the assertion must be signed with RS256")
        try:
            self._public_key.verify(signature, f"{header_b64}.{claims_b64}".encode("ascii"),
                                    padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise _RefusedError(400, "the assertion's signature does not verify") from None
        if claims.get("iss") != DEMO_CLIENT_EMAIL:
            raise _RefusedError(400, f"unknown service account {claims.get('iss')!r}")
        if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_uri):
            raise _RefusedError(400, f"aud {claims.get('aud')!r} is not a token endpoint")
        now = time.time()
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] < now:
            raise _RefusedError(400, "the assertion has expired")
        return claims

    def _authorised(self, headers: dict[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        with self._tokens_lock:
            expiry = self._tokens.get(token)
        return scheme.lower() == "bearer" and expiry is not None and expiry > time.time()

    def _send(self, project: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        if not self._authorised(headers):
            raise _RefusedError(401, "Request had invalid authentication credentials.")
        if project != DEMO_PROJECT:
            raise _RefusedError(403, f"Permission denied on project {project}")
        try:
            message = json.loads(body)["message"]
            token = message["token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise _RefusedError(400, f"message.token is required ({exc})") from exc
        if not isinstance(token, str) or not self.state.has_device(token):
            raise _RefusedError(404, "Requested entity was not found.", fcm_code="UNREGISTERED")
        name = f"projects/{project}/messages/0:{secrets.token_hex(8)}"
        _keep(self.folder, {"received_at": datetime.now(UTC).isoformat(), "name": name,
                            "message": message})
        return {"name": name}


def _json(status: int, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json; charset=UTF-8"}, \
        json.dumps(payload).encode("utf-8")


def _google_error(exc: _RefusedError) -> dict[str, Any]:
    statuses = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND"}
    error: dict[str, Any] = {"code": exc.status, "message": exc.reason,
                             "status": statuses.get(exc.status, "UNKNOWN")}
    if exc.fcm_code:
        error["details"] = [{"@type": _FCM_ERROR_TYPE, "errorCode": exc.fcm_code}]
    return {"error": error}


def keep_lookups_local(fcm_sink: FcmSink) -> None:
    """Point google-auth's regional-access-boundary lookup at the FCM sink, for this process.

    After each token refresh google-auth asks ``iamcredentials.googleapis.com``
    where the service account may be used, in a background thread. The demo's
    account exists nowhere but here, and the demo must not talk to Google.
    """
    try:
        from google.auth import _regional_access_boundary_utils as lookups
    except ImportError:  # a google-auth without the lookup
        return
    if not hasattr(lookups, "get_service_account_rab_endpoint"):
        log.warning("google-auth %s moved its regional access boundary lookup; the demo's "
                    "FCM channel may try to reach Google", getattr(lookups, "__name__", ""))
        return
    origin = fcm_sink.origin
    lookups.get_service_account_rab_endpoint = (
        lambda email: f"{origin}/v1/projects/-/serviceAccounts/{email}/allowedLocations")


def repoint_subscriptions(state: DemoPushState, addresses: list[tuple[int, str]]
                          ) -> dict[int, str]:
    """New values for demo web push addresses whose endpoint is not the sink's current origin.

    ``addresses`` are ``(id, subscription JSON)`` pairs; the result maps the id of
    each one that must change to its new JSON. Subscriptions that are not the
    demo's are left alone.
    """
    known = set(state.subscription_ids())
    origin = state.web_push_origin
    changed: dict[int, str] = {}
    for address_id, value in addresses:
        try:
            endpoint = json.loads(value)["endpoint"]
        except (ValueError, KeyError, TypeError):
            continue
        parts = urllib.parse.urlsplit(endpoint)
        subscription_id = parts.path.removeprefix("/push/")
        if parts.hostname == HOST and subscription_id in known \
                and not endpoint.startswith(origin + "/"):
            changed[address_id] = json.dumps(state.subscription(subscription_id))
    return changed
