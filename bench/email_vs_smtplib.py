"""Benchmark: Herald's EmailChannel against a bare smtplib loop, same sink, side by side.

A local aiosmtpd sink runs in a separate process (so it does not share the GIL
with the sender) and accepts everything. ``-n`` emails with a 50 kB PDF attached
go (a) through :class:`distribution.channels.email.EmailChannel` (MIME built by
Herald: text and HTML, attachment, deterministic Message-ID) and (b) through a
bare loop that builds a comparable ``EmailMessage`` and calls
``smtplib.SMTP.send_message``; both reuse one connection. The two alternate in
rounds so that a busy neighbour penalises both.

Run from the repository root::

    .venv/bin/python bench/email_vs_smtplib.py -n 500

Goal (issue 4): Herald at least 80% of the bare loop's rate. Prints
``BENCH email_herald``/``email_smtplib`` (messages/s) and ``BENCH email_ratio``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import smtplib
import socket
import sys
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distribution.channels.base import Attachment, OutgoingMessage
from distribution.channels.email import EmailChannel, SmtpSettings

PDF = b"%PDF-1.7\n" + os.urandom(50 * 1024) + b"\n%%EOF\n"


def sink(port: int, ready: multiprocessing.Event) -> None:
    """An SMTP server that accepts every message and keeps nothing."""
    from aiosmtpd.controller import Controller

    class Accept:
        async def handle_DATA(self, server, session, envelope) -> str:
            return "250 OK"

    controller = Controller(Accept(), hostname="127.0.0.1", port=port,
                            data_size_limit=10 * 1024 * 1024)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def outgoing(n: int) -> OutgoingMessage:
    """The n-th invoice email, as the sender builds it."""
    number = f"INV-2026-{n:06d}"
    text = (f"Dear Ann Peeters,\n\nYour invoice {number} of € 120,15 is ready, due on 31 "
            f"December 2026.\n\nReview and pay: https://portal.herald.test/invoices/{number}")
    html = "<!doctype html><html><body>" + "".join(
        f"<p>{part}</p>" for part in text.split("\n\n")) + "</body></html>"
    return OutgoingMessage(
        delivery_id=n, idempotency_key=f"hd{n:030d}", message_type="invoice",
        address="ann@example.com", recipient_name="Ann Peeters", language="en",
        subject=f"Your invoice {number}", text=text, html=html,
        link=f"https://portal.herald.test/invoices/{number}",
        attachments=(Attachment(f"{number}.pdf", "application/pdf", PDF),))


def herald_round(channel: EmailChannel, count: int, offset: int) -> tuple[float, float]:
    """Seconds (wall, CPU) to send ``count`` messages through the channel."""
    started, cpu = time.perf_counter(), time.process_time()
    for n in range(offset, offset + count):
        channel.send(outgoing(n))
    return time.perf_counter() - started, time.process_time() - cpu


def smtplib_round(smtp: smtplib.SMTP, count: int, offset: int) -> tuple[float, float]:
    """Seconds (wall, CPU) to send ``count`` comparable messages with a bare smtplib loop."""
    started, cpu = time.perf_counter(), time.process_time()
    for n in range(offset, offset + count):
        message = outgoing(n)
        mime = EmailMessage()
        mime["From"] = "Herald Billing <billing@herald.test>"
        mime["To"] = f"{message.recipient_name} <{message.address}>"
        mime["Subject"] = message.subject
        mime["Message-ID"] = f"<{message.idempotency_key}@mail.herald.test>"
        mime.set_content(message.text)
        mime.add_alternative(message.html, subtype="html")
        for attachment in message.attachments:
            maintype, subtype = attachment.media_type.split("/")
            mime.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                                filename=attachment.filename)
        smtp.send_message(mime)
    return time.perf_counter() - started, time.process_time() - cpu


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    """Start the sink, alternate rounds, print the rates and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--messages", type=int, default=600, help="per side")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    port = free_port()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    server = context.Process(target=sink, args=(port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise SystemExit("the SMTP sink did not start")
        settings = SmtpSettings(host="127.0.0.1", port=port, from_address="billing@herald.test",
                                from_name="Herald Billing", message_id_domain="mail.herald.test",
                                timeout=30)
        per_round = max(args.messages // args.rounds, 1)
        herald_seconds = bare_seconds = herald_cpu = bare_cpu = 0.0
        with EmailChannel(settings) as channel, smtplib.SMTP(
                "127.0.0.1", port, local_hostname="mail.herald.test", timeout=30) as smtp:
            herald_round(channel, 10, 0)  # warm up both: connection, imports
            smtplib_round(smtp, 10, 0)
            for index in range(args.rounds):
                offset = 100 + index * per_round
                wall, cpu = herald_round(channel, per_round, offset)
                herald_seconds, herald_cpu = herald_seconds + wall, herald_cpu + cpu
                wall, cpu = smtplib_round(smtp, per_round, offset)
                bare_seconds, bare_cpu = bare_seconds + wall, bare_cpu + cpu
        total = per_round * args.rounds
        herald, bare = total / herald_seconds, total / bare_seconds
        print(f"BENCH email_herald {herald:.0f} messages/s")
        print(f"BENCH email_smtplib {bare:.0f} messages/s")
        print(f"BENCH email_ratio {herald / bare:.2f} ratio")
        # The sender's own CPU per message: what the ratio means when the peer is the bottleneck.
        print(f"BENCH email_herald_cpu {herald_cpu / total * 1000:.2f} ms/message")
        print(f"BENCH email_smtplib_cpu {bare_cpu / total * 1000:.2f} ms/message")
    finally:
        server.terminate()
        server.join(10)


if __name__ == "__main__":
    main()
