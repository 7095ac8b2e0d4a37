"""A local stand-in for Stripe's REST API and its webhook signatures, on 127.0.0.1.

It speaks the wire format the ``stripe`` library uses: form-encoded requests with
bracketed keys (``line_items[0][price_data][currency]=eur``), a bearer secret
key, JSON answers shaped like Stripe's objects, and Stripe's error envelope.
Only what Herald uses is served: ``POST /v1/checkout/sessions``. It also builds
webhook events and signs them exactly as Stripe does (``Stripe-Signature:
t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload" under the endpoint secret>``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest

SECRET_KEY = "sk_test_herald_local"
WEBHOOK_SECRET = "whsec_herald_local"


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``[("a[0][b]", "1")]`` → ``{"a": [{"b": "1"}]}``: how Stripe reads its form keys."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = root
        for part, following in zip(parts, [*parts[1:], None], strict=True):
            if following is None:
                node[int(part) if isinstance(node, list) else part] = value
                break
            container: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None:
                    node[index] = container
                node = node[index]
            else:
                node = node.setdefault(part, container)
    return root


@dataclass
class StripePeer:
    """The server's state: what it received, what it made, and its failure switch."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_with: tuple[int, dict[str, Any]] | None = None

    @property
    def api_base(self) -> str:
        """What ``stripe`` is pointed at instead of https://api.stripe.com."""
        return f"http://{self.host}:{self.port}"

    def create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        """A Checkout Session as Stripe returns it (API version 2024+ shape, trimmed)."""
        session_id = f"cs_test_{secrets.token_hex(12)}"
        items = params.get("line_items") or []
        total = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1))
                    for i in items)
        now = int(time.time())
        checkout = {
            "id": session_id, "object": "checkout.session", "livemode": False,
            "mode": params.get("mode"), "status": "open", "payment_status": "unpaid",
            "amount_subtotal": total, "amount_total": total,
            "currency": items[0]["price_data"]["currency"] if items else None,
            "client_reference_id": params.get("client_reference_id"),
            "customer_email": params.get("customer_email"),
            "metadata": params.get("metadata") or {}, "payment_intent": None,
            "success_url": params.get("success_url"), "cancel_url": params.get("cancel_url"),
            "created": now, "expires_at": now + 86400,
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }
        self.sessions[session_id] = checkout
        return checkout

    def completed_event(self, session_id: str, *, amount_total: int | None = None,
                        payment_intent: str | None = None, event_id: str | None = None
                        ) -> dict[str, Any]:
        """The ``checkout.session.completed`` event Stripe sends once the customer paid."""
        checkout = dict(self.sessions[session_id], status="complete", payment_status="paid",
                        payment_intent=payment_intent or f"pi_{secrets.token_hex(12)}")
        if amount_total is not None:
            checkout["amount_total"] = amount_total
        return _event("checkout.session.completed", checkout, event_id)

    def refunded_event(self, payment_intent: str, *, amount: int, amount_refunded: int,
                       currency: str = "eur", charge_id: str = "ch_test_1",
                       event_id: str | None = None) -> dict[str, Any]:
        """The ``charge.refunded`` event (amounts cumulative, as Stripe sends them)."""
        charge = {"id": charge_id, "object": "charge", "amount": amount,
                  "amount_refunded": amount_refunded, "currency": currency,
                  "payment_intent": payment_intent, "refunded": amount_refunded >= amount,
                  "status": "succeeded"}
        return _event("charge.refunded", charge, event_id)


def _event(event_type: str, obj: dict[str, Any], event_id: str | None) -> dict[str, Any]:
    return {"id": event_id or f"evt_{secrets.token_hex(12)}", "object": "event",
            "api_version": "2024-06-20", "created": int(time.time()), "livemode": False,
            "type": event_type, "data": {"object": obj}, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}}


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe puts on a webhook request."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _handler(peer: StripePeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet in test output
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_{secrets.token_hex(8)}")
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # the http.server hook's name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            pairs = parse_qsl(raw, keep_blank_values=True)
            params = nest(pairs)
            peer.requests.append({"path": self.path, "params": params,
                                  "authorization": self.headers.get("Authorization"),
                                  "idempotency_key": self.headers.get("Idempotency-Key"),
                                  "stripe_version": self.headers.get("Stripe-Version")})
            if self.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
                self._reply(401, {"error": {"type": "invalid_request_error",
                                            "message": "Invalid API Key provided"}})
                return
            if peer.fail_with is not None:
                self._reply(*peer.fail_with)
                return
            if self.path == "/v1/checkout/sessions":
                self._reply(200, peer.create_session(params))
                return
            message = f"Unrecognized request URL (POST: {self.path})"
            self._reply(404, {"error": {"type": "invalid_request_error", "message": message}})

    return Handler


@pytest.fixture
def stripe_peer() -> Iterator[StripePeer]:
    """A running stand-in for api.stripe.com on a free loopback port."""
    peer = StripePeer()
    server = ThreadingHTTPServer((peer.host, 0), _handler(peer))
    peer.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
