"""A webhook receiver on 127.0.0.1 that checks Herald's signatures as an integrator would.

It verifies ``Herald-Signature: t=...,v1=...`` on its own (HMAC-SHA256 of
``"<t>.<raw body>"`` under the endpoint secret, compared in constant time), refuses
a timestamp outside the tolerance and a signature it has already accepted (a
captured request sent again), and answers with the statuses it is told to, in
order (then 200). Every request is kept, accepted or not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_SECONDS = 300


@dataclass
class Received:
    """One request as the receiver saw it, and its verdict."""

    path: str
    headers: dict[str, str]
    body: bytes
    verdict: str  # "ok", or why it was refused
    status: int

    def json(self) -> Any:
        """The body parsed."""
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """The server's state; set ``secret`` per test, queue statuses in ``answers``."""

    secret: str = ""
    secrets: dict[str, str] = field(default_factory=dict)  # per path, over ``secret``
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    seen_signatures: set[str] = field(default_factory=set)
    now: Any = time.time  # the receiver's clock (seconds)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        """The address Herald posts to."""
        return f"http://127.0.0.1:{self.port}{path}"

    def verify(self, headers: dict[str, str], body: bytes, path: str = "/hook") -> str:
        """"ok", or why the request must be refused."""
        header = headers.get("Herald-Signature", "")
        parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
        if "t" not in parts or "v1" not in parts or not parts["t"].isdigit():
            return "no signature"
        if abs(self.now() - int(parts["t"])) > TOLERANCE_SECONDS:
            return "timestamp outside tolerance"
        secret = self.secrets.get(path, self.secret)
        expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body,
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts["v1"]):
            return "bad signature"
        if parts["v1"] in self.seen_signatures:
            return "replayed request"
        self.seen_signatures.add(parts["v1"])
        return "ok"

    def accepted(self) -> list[Received]:
        """The requests that passed the checks and were answered 2xx."""
        return [r for r in self.received if r.verdict == "ok" and 200 <= r.status < 300]


def _handler(state: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers.items())
            with state.lock:
                verdict = state.verify(headers, body, self.path)
                status = (state.answers.pop(0) if state.answers else 200) \
                    if verdict == "ok" else 400
                state.received.append(Received(self.path, headers, body, verdict, status))
            payload = json.dumps({"verdict": verdict}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver() -> Iterator[WebhookReceiver]:
    """A running receiver on a free loopback port, stopped on leaving."""
    state = WebhookReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
