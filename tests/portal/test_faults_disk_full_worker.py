"""Fault test: the document folder's disk full while a worker stores a rendered PDF.

The folder store lives on the real 512 KiB tmpfs of ``test_faults_disk_full`` (the
kernel itself answers ``ENOSPC``). An invoice is issued while there is room, a run
emails it (the customer wants the PDF attached, so the email waits for it), then the
disk fills up and the worker does what it does: runs the queued PDF rendering, its
scheduler's periodic pass over the PDFs emails wait for, and the send.

On the full disk: the render fails with the cause in the worker's log, nothing of
the PDF is kept (no partial or temporary file, no stored record, no hash on the
invoice or the message, every stored hash still reads back), the delivery goes back
to pending with its reason recorded in its events, and the audit chain is intact.
Once space returns, the next periodic pass renders the PDF and the email goes out
with it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime

import pytest
import sqlalchemy as sa
from huey.consumer import Scheduler

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState, Message
from distribution.dispatcher import tick
from distribution.documents import StoredDocument, make_store
from distribution.events import Event, verify_chain
from distribution.runs import WaveOptions, start_wave
from portal import create_app
from portal.db import get_database
from portal.migrate import upgrade
from portal.models import Invoice
from portal.queue import get_huey, get_tasks
from portal.runs import RunSelection, create_document_run
from tests.factories import invoice_json, make_customer, make_organisation
from tests.peers import smtp as smtp_peers
from tests.portal.test_faults_disk_full import TinyDisk
from tests.portal.test_faults_disk_full import tiny_disk as tiny_disk_fixture

smtp_peer = smtp_peers.smtp_peer
tiny_disk = tiny_disk_fixture
FULL_DISK = "No space left on device (the disk holding the document folder is full)"
NUMBERS = ("INV-WORKER-1", "INV-WORKER-2")


@pytest.fixture
def herald(databases, tmp_path, smtp_peer, tiny_disk: TinyDisk):
    """An app of its own: documents on the tiny disk, email to the SMTP peer, and a queue
    that only runs what the test's worker takes from it."""
    app = create_app({
        "DATABASE_URL": databases.new_url(), "HERALD_INSTANCE_PATH": str(tmp_path),
        "DOCUMENT_STORE": f"folder:{tiny_disk.mountpoint / 'documents'}",
        "MAIL_FROM": "billing@seller.example", "MAIL_FROM_NAME": "Testing Telecom",
        "SMTP_HOST": smtp_peer.host, "SMTP_PORT": str(smtp_peer.port),
        "HERALD_PUBLIC_URL": "https://portal.example",
    })
    database = get_database(app)
    upgrade(database.engine)
    with database.session_scope() as session:
        make_customer(session, make_organisation(session), "C1")
    yield app
    database.engine.dispose()


def work(app) -> list[tuple[str, object]]:
    """What a worker does with the queue: run every task in it; returns their names and
    results."""
    huey = get_huey(app)
    ran = []
    while (task := huey.dequeue()) is not None:
        ran.append((task.name, huey.execute(task)))
    return ran


def schedule(app, minute: datetime) -> None:
    """The worker's scheduler at ``minute``: enqueue the periodic tasks then due."""
    Scheduler(get_huey(app), threading.Event(), 1, True).enqueue_periodic_tasks(minute)


def dispatch_and_work(app, done) -> list[str]:
    """Dispatcher ticks, each followed by the worker's turn, until ``done()`` (the wave's
    bucket lets deliveries go at the wave's rate); returns the names of the tasks run."""
    tasks = get_tasks(app)
    ran = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not done():
        tick(get_database(app).sessionmaker, lambda delivery_id: tasks.send(delivery_id))
        ran += [name for name, _result in work(app)]
        time.sleep(0.1)
    assert done(), "the deliveries did not get there in 15 s"
    return ran


def issue_and_run(app, runner, tmp_path) -> None:
    """Issue two invoices (their UBLs go to the store) and start a run emailing them."""
    path = tmp_path / "invoices.json"
    path.write_text(json.dumps([invoice_json(number, "C1") for number in NUMBERS]))
    result = runner.invoke(args=["invoices", "import", str(path)])
    assert result.exit_code == 0, result.output
    with get_database(app).session_scope() as session:
        summary = create_document_run(
            session, RunSelection(), WaveOptions(window_start_hour=0, window_end_hour=24,
                                                 weekdays=tuple(range(7))),
            name="November", public_url="https://portal.example", created_by="test")
        start_wave(session, summary.run.waves[0].id, actor="test")


def email_deliveries(app) -> list[tuple[DeliveryState, int]]:
    """Each email delivery's state and attempts."""
    with get_database(app).session_scope() as session:
        return [tuple(row) for row in session.execute(
            sa.select(Delivery.state, Delivery.attempts)
            .where(Delivery.channel == ChannelName.EMAIL).order_by(Delivery.id))]


def all_tried(app) -> bool:
    return all(attempts and state is not DeliveryState.RELEASED
               for state, attempts in email_deliveries(app))


def all_sent(app) -> bool:
    return all(state is DeliveryState.SENT for state, _attempts in email_deliveries(app))


def state(app, store) -> dict:
    """What the database and the disk say about the first invoice, its message and its
    delivery, and about every stored document."""
    with get_database(app).session_scope() as session:
        invoice = session.scalars(sa.select(Invoice).where(
            Invoice.number == "INV-WORKER-1")).one()
        message = session.scalars(sa.select(Message).where(
            Message.ubl_sha256 == invoice.ubl_sha256)).one()
        delivery = session.scalars(sa.select(Delivery).where(
            Delivery.message_id == message.id, Delivery.channel == ChannelName.EMAIL)).one()
        documents = list(session.scalars(sa.select(StoredDocument)))
        # Every stored hash reads back from its file, the hash checked by the store.
        for document in documents:
            assert store.get(session, document.sha256)
        return {
            "invoice_pdf": invoice.pdf_sha256, "message_pdf": message.pdf_sha256,
            "delivery": (delivery.state, delivery.last_error),
            "delivery_id": delivery.id,
            "formats": sorted(d.format.value for d in documents),
            "rendered_events": session.scalar(sa.select(sa.func.count()).select_from(Event)
                                              .where(Event.kind == "invoice.pdf_rendered")),
            "delivery_events": list(session.scalars(
                sa.select(Event.kind).where(Event.subject_type == "delivery",
                                            Event.subject_key == str(delivery.id))
                .order_by(Event.id))),
            "chain": verify_chain(session),
        }


def test_a_full_disk_while_the_worker_stores_a_pdf(herald, tiny_disk: TinyDisk, smtp_peer,
                                                     tmp_path, caplog) -> None:
    app = herald
    store = make_store(f"folder:{tiny_disk.mountpoint / 'documents'}", tmp_path)
    issue_and_run(app, app.test_cli_runner(), tmp_path)
    assert len(tiny_disk.files()) == 2  # the UBLs

    tiny_disk.fill()
    with caplog.at_level(logging.ERROR, logger="portal.tasks"):
        ran = work(app)  # the import queued the rendering
        schedule(app, datetime(2026, 11, 23, 10, 1))
        ran += work(app)
    results = dict(ran)
    # The first refusal stops each pass: rendering the second PDF would only burn CPU.
    assert results["render_pdfs"] == {"rendered": 0, "skipped": 0, "failed": 2,
                                      "handed_on": 0}
    assert results["render_wanted_pdfs"] == {"rendered": 0, "remaining": 0}
    failures = [r.getMessage() for r in caplog.records
                if "rendering the PDF of invoice" in r.getMessage()]
    assert len(failures) == 2  # the queued render and the periodic pass, each logged
    assert all("the document store is unavailable (2 renders stopped)" in m for m in failures)
    assert all(FULL_DISK in m and "nothing was stored" in m for m in failures)

    assert "send" in dispatch_and_work(app, lambda: all_tried(app))
    after_failure = state(app, store)
    assert after_failure["invoice_pdf"] is None and after_failure["message_pdf"] is None
    assert after_failure["formats"] == ["ubl", "ubl"]  # no record of a PDF that is not there
    assert after_failure["rendered_events"] == 0
    # The emails wait (retried later, the reason recorded), neither sent without their PDF
    # nor given up.
    assert [state for state, _attempts in email_deliveries(app)] == [DeliveryState.PENDING] * 2
    assert after_failure["delivery"] == (DeliveryState.PENDING, "the PDF is still being rendered")
    assert after_failure["delivery_events"][-1] == "delivery.retry_scheduled"
    assert after_failure["chain"] is None
    assert len(tiny_disk.files()) == 2  # the UBLs: no partial PDF, no temporary file
    assert smtp_peer.messages == []

    tiny_disk.free()
    schedule(app, datetime(2026, 11, 23, 10, 2))
    assert dict(work(app))["render_wanted_pdfs"] == {"rendered": 2, "remaining": 0}
    with get_database(app).session_scope() as session:
        # The retries' backoff, passed (the dispatcher releases them when they are due).
        session.execute(sa.update(Delivery).values(next_attempt_at=None))
    assert "send" in dispatch_and_work(app, lambda: all_sent(app))

    done = state(app, store)
    assert done["invoice_pdf"] and done["message_pdf"] == done["invoice_pdf"]
    assert done["formats"] == ["pdf", "pdf", "ubl", "ubl"] and done["rendered_events"] == 2
    assert done["delivery"][0] is DeliveryState.SENT
    assert done["chain"] is None
    assert len(tiny_disk.files()) == 4
    assert len(smtp_peer.messages) == 2
    with get_database(app).session_scope() as session:
        pdf = store.get(session, done["invoice_pdf"])
    assert pdf.startswith(b"%PDF")
    attached = [part.get_content() for message in smtp_peer.messages
                for part in message.parsed().iter_attachments()
                if part.get_content_type() == "application/pdf"]
    assert pdf in attached  # the email went out with the PDF it waited for
