"""Benchmark: Herald's WebPushChannel against a bare pywebpush loop, same service, side by side.

A minimal push service runs in a separate process (so it does not share the GIL
with the sender): it answers every ``POST /push/<id>`` with 201 and a
``Location``, reading the body but not decrypting it. ``-n`` pushes go (a) through
:class:`distribution.channels.webpush.WebPushChannel` (``allow_http=True``;
payload built from the message, Topic, a fresh VAPID claims dict per send) and
(b) through a bare ``pywebpush.webpush()`` loop with the same VAPID key, a
comparable payload and claims, and a shared ``requests.Session``. Both encrypt
with aes128gcm and sign a VAPID JWT per push. The two alternate in rounds.

Run from the repository root::

    .venv/bin/python bench/webpush_vs_pywebpush.py -n 600

Goal (issue 4): Herald at least 80% of the bare loop's rate. Prints
``BENCH webpush_herald``/``webpush_pywebpush`` (pushes/s) and ``BENCH webpush_ratio``.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pywebpush import webpush

from distribution.channels.base import OutgoingMessage
from distribution.channels.webpush import WebPushChannel
from distribution.vapid import VapidKeys

SUBJECT = "mailto:ops@herald.test"


def push_service(port: int, ready: multiprocessing.Event) -> None:
    """Accept every push with 201; nothing is decrypted or kept."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real push services do

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(201)
            self.send_header("Location", f"{self.path}/m/1")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ready.set()
    server.serve_forever()


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def subscription(port: int) -> dict:
    """A browser's subscription: its ECDH public key and auth secret, our local endpoint."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)
    return {"endpoint": f"http://127.0.0.1:{port}/push/bench",
            "keys": {"p256dh": b64url(public), "auth": b64url(b"0123456789abcdef")}}


def outgoing(n: int, address: str) -> OutgoingMessage:
    """The n-th invoice notification, as the sender builds it."""
    number = f"INV-2026-{n:06d}"
    link = f"https://portal.herald.test/invoices/{number}"
    return OutgoingMessage(
        delivery_id=n, idempotency_key=f"hd{n:030d}", message_type="invoice", address=address,
        recipient_name="Ann Peeters", language="en", subject=f"Your invoice {number}",
        text=f"Your invoice {number} of € 120,15 is ready, due on 31 December 2026.",
        link=link, data={"message_type": "invoice", "delivery_id": str(n), "number": number})


def herald_round(channel: WebPushChannel, address: str, count: int,
                 offset: int) -> tuple[float, float]:
    """Seconds (wall, CPU) to send ``count`` pushes through the channel."""
    started, cpu = time.perf_counter(), time.process_time()
    for n in range(offset, offset + count):
        channel.send(outgoing(n, address))
    return time.perf_counter() - started, time.process_time() - cpu


def bare_round(vapid: Vapid, session: requests.Session, info: dict, port: int, count: int,
               offset: int) -> tuple[float, float]:
    """Seconds (wall, CPU) to send ``count`` comparable pushes with bare ``webpush()`` calls."""
    started, cpu = time.perf_counter(), time.process_time()
    for n in range(offset, offset + count):
        message = outgoing(n, "")
        payload = json.dumps({"title": message.subject, "body": message.text,
                              "url": message.link, "data": message.data})
        webpush(subscription_info=info, data=payload, vapid_private_key=vapid,
                vapid_claims={"sub": SUBJECT, "aud": f"http://127.0.0.1:{port}",
                              "exp": int(time.time()) + 12 * 3600},
                content_encoding="aes128gcm", timeout=10, ttl=86400,
                headers={"Topic": message.idempotency_key[:32], "Urgency": "normal",
                         "Content-Type": "application/octet-stream"},
                requests_session=session)
    return time.perf_counter() - started, time.process_time() - cpu


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    """Start the push service, alternate rounds, print the rates and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--pushes", type=int, default=600, help="per side")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    port = free_port()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    server = context.Process(target=push_service, args=(port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise SystemExit("the push service did not start")
        keys = VapidKeys.generate()
        info = subscription(port)
        address = json.dumps(info)
        per_round = max(args.pushes // args.rounds, 1)
        herald_seconds = bare_seconds = herald_cpu = bare_cpu = 0.0
        with requests.Session() as session:
            channel = WebPushChannel(keys, SUBJECT, allow_http=True)
            vapid = Vapid(private_key=keys.private_key)
            herald_round(channel, address, 10, 0)  # warm up both: connection, imports
            bare_round(vapid, session, info, port, 10, 0)
            for index in range(args.rounds):
                offset = 100 + index * per_round
                wall, cpu = herald_round(channel, address, per_round, offset)
                herald_seconds, herald_cpu = herald_seconds + wall, herald_cpu + cpu
                wall, cpu = bare_round(vapid, session, info, port, per_round, offset)
                bare_seconds, bare_cpu = bare_seconds + wall, bare_cpu + cpu
            channel.close()
        total = per_round * args.rounds
        herald, bare = total / herald_seconds, total / bare_seconds
        print(f"BENCH webpush_herald {herald:.0f} pushes/s")
        print(f"BENCH webpush_pywebpush {bare:.0f} pushes/s")
        print(f"BENCH webpush_ratio {herald / bare:.2f} ratio")
        # The sender's own CPU per push: what the ratio means when the peer is the bottleneck.
        print(f"BENCH webpush_herald_cpu {herald_cpu / total * 1000:.2f} ms/push")
        print(f"BENCH webpush_pywebpush_cpu {bare_cpu / total * 1000:.2f} ms/push")
    finally:
        server.terminate()
        server.join(10)


if __name__ == "__main__":
    main()
