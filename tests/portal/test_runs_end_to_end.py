"""From import to inbox: issue, run, dispatch and send through real peers on loopback."""

from __future__ import annotations

import json
import re
import time

import pytest
import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState
from distribution.dispatcher import tick
from distribution.documents import DatabaseStore
from distribution.events import events_for
from distribution.preferences import ensure_message_types, set_preference
from portal import create_app
from portal.db import get_database
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.migrate import upgrade
from portal.models import Customer, CustomerKind, Invoice
from portal.queue import get_tasks
from portal.recipients_sync import sync_customer
from portal.tasks import enqueue_pdf_rendering, unrendered_invoice_ids
from tests.factories import invoice_json, make_customer, make_organisation
from tests.peers import smtp as peers

smtp_peer = peers.smtp_peer


@pytest.fixture
def herald(databases, tmp_path, smtp_peer):
    """An app on a database of its own, email to the SMTP peer, Peppol to a folder."""
    app = create_app({
        "DATABASE_URL": databases.new_url(), "HERALD_INSTANCE_PATH": str(tmp_path),
        "MAIL_FROM": "billing@seller.example", "MAIL_FROM_NAME": "Testing Telecom",
        "SMTP_HOST": smtp_peer.host, "SMTP_PORT": str(smtp_peer.port),
        "PEPPOL_OUTBOX": str(tmp_path / "outbox"), "HERALD_PUBLIC_URL": "https://portal.example",
        "HUEY_IMMEDIATE": True,
    })
    database = get_database(app)
    upgrade(database.engine)
    with database.session_scope() as session:
        org = make_organisation(session)
        make_customer(session, org, "C1", name="Anna Peeters", language="nl")
        make_customer(session, org, "C2", kind=CustomerKind.BUSINESS, name="Acme BV",
                      vat_id="BE0403019261", peppol_endpoint_scheme="0208",
                      peppol_endpoint_id="0403019261")
        documents = [document_from_mapping(invoice_json(f"INV-{n}", customer),
                                           Locator("t", str(n)), source="json")
                     for n, customer in ((1, "C1"), (2, "C2"))]
        import_documents(session, documents, file="t", store=DatabaseStore())
    with database.session_scope() as session:
        ids = unrendered_invoice_ids(session)
    enqueue_pdf_rendering(app, ids)  # Huey is immediate here: the PDFs exist after this
    yield app
    database.engine.dispose()


def _dispatch(app, seconds: float = 10.0) -> None:
    """Tick the dispatcher until nothing is waiting (sends run at once: Huey is immediate)."""
    database = get_database(app)
    tasks = get_tasks(app)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tick(database.sessionmaker, lambda delivery_id: tasks.send(delivery_id))
        with database.session_scope() as session:
            waiting = session.scalar(sa.select(sa.func.count()).select_from(Delivery).where(
                Delivery.state.in_((DeliveryState.PENDING, DeliveryState.RELEASED))))
        if not waiting:
            return
        time.sleep(0.05)  # the token bucket refills with time


def _set_peppol_preference(app):
    with get_database(app).session_scope() as session:
        ensure_message_types(session)
        acme = session.scalars(sa.select(Customer).where(Customer.name == "Acme BV")).one()
        set_preference(session, sync_customer(session, acme, actor="test"), "*",
                       [ChannelName.PEPPOL])


def test_a_run_reaches_email_peppol_and_the_portal(herald, smtp_peer, tmp_path):
    runner = herald.test_cli_runner()
    created = runner.invoke(args=["runs", "create", "--rate", "6000", "--window", "0-24",
                                  "--weekends", "--start"])
    assert created.exit_code == 0, created.output
    assert "Run 1: 2 messages (0 already sent before)" in created.output

    _dispatch(herald)
    database = get_database(herald)
    with database.session_scope() as session:
        states = {(d.channel.value, d.state) for d in session.scalars(sa.select(Delivery))}
        anna = [d for d in session.scalars(sa.select(Delivery))
                if d.message.recipient.name == "Anna Peeters"]
        timeline = [e.kind for e in events_for(session, "delivery", str(anna[0].id))]
    assert states == {("email", DeliveryState.SENT), ("portal", DeliveryState.SENT)}
    assert timeline == ["delivery.planned", "delivery.released", "delivery.sending",
                        "delivery.sent"]
    mails = {m.rcpt_tos[0]: m.parsed() for m in smtp_peer.messages}
    assert set(mails) == {"c1@example.com", "c2@example.com"}
    anna_mail = mails["c1@example.com"]
    assert anna_mail["Subject"] == "Uw factuur INV-1 van Testing Telecom NV"
    assert anna_mail["Content-Language"] == "nl"
    body = anna_mail.get_body(("plain",)).get_content()
    assert "€ 120,15" in body.replace("\xa0", " ")
    # A "review & pay" link of its own, which opens INV-1 without a password.
    link = re.search(r"https://portal\.example(/pay/t/[\w-]+)", body).group(1)
    opened = herald.test_client().get(link)
    assert opened.status_code == 302 and opened.location.startswith("/pay/")

    contact = runner.invoke(args=["contacts", "record", "C1", "--invoice", "INV-1"])
    assert contact.output.strip() == "Contact recorded against wave 1."
    unknown = runner.invoke(args=["contacts", "record", "C1", "--invoice", "INV-2"])
    assert unknown.exit_code != 0 and "customer C1 has no document INV-2" in unknown.output

    again = runner.invoke(args=["runs", "create", "--start"])
    assert "0 messages (2 already sent before)" in again.output
    verified = runner.invoke(args=["audit", "verify"])
    assert verified.exit_code == 0, verified.output


def test_a_peppol_customer_gets_the_issued_ubl_through_the_outbox(herald, tmp_path):
    _set_peppol_preference(herald)
    runner = herald.test_cli_runner()
    runner.invoke(args=["runs", "create", "--rate", "6000", "--window", "0-24", "--weekends",
                        "--start", "--segment", "business"])
    _dispatch(herald)
    database = get_database(herald)
    envelopes = list((tmp_path / "outbox").glob("*.json"))
    assert len(envelopes) == 1
    envelope = json.loads(envelopes[0].read_text())
    assert (envelope["receiver_scheme"], envelope["receiver_id"]) == ("0208", "0403019261")
    sent = (tmp_path / "outbox" / envelope["document"]).read_bytes()
    with database.session_scope() as session:
        invoice = session.scalars(sa.select(Invoice).where(Invoice.number == "INV-2")).one()
        assert sent == DatabaseStore().get(session, invoice.ubl_sha256)


def test_pause_and_cancel_from_the_command_line(herald):
    runner = herald.test_cli_runner()
    runner.invoke(args=["runs", "create", "--rate", "6000", "--window", "0-24", "--weekends"])
    assert "running" in runner.invoke(args=["waves", "start", "1"]).output
    assert runner.invoke(args=["waves", "pause", "1"]).exit_code == 0
    refused = runner.invoke(args=["waves", "pause", "1"])
    assert refused.exit_code != 0 and "only a running wave can pause" in refused.output
    assert runner.invoke(args=["waves", "resume", "1"]).exit_code == 0
    assert runner.invoke(args=["waves", "cancel", "1"]).exit_code == 0
    shown = runner.invoke(args=["runs", "show", "1"]).output
    # two customers, each on email and the portal inbox (the defaults)
    assert "wave 1: cancelled" in shown and "cancelled 4" in shown


def test_the_portal_inbox_shows_news_and_opening_the_invoice_marks_it_viewed(herald):
    from tests.factories import make_user
    from tests.portal.test_web import sign_in

    runner = herald.test_cli_runner()
    runner.invoke(args=["runs", "create", "--rate", "6000", "--window", "0-24", "--weekends",
                        "--start"])
    _dispatch(herald)
    database = get_database(herald)
    with database.session_scope() as session:
        anna = session.scalars(sa.select(Customer).where(Customer.number == "C1")).one()
        make_user(session, email="anna@example.com", customer=anna)
    client = herald.test_client()
    sign_in(client, "anna@example.com")
    page = client.get("/invoices").get_data(as_text=True)
    # Anna reads Dutch: "New for you" and "Invoice INV-1" in her language.
    assert "Nieuw voor u" in page and "Factuur INV-1" in page
    assert "Nieuw voor u" not in client.get("/invoices").get_data(as_text=True)  # seen once
    assert client.get("/invoices/INV-1").status_code == 200
    with database.session_scope() as session:
        states = {d.channel.value: d.state for d in session.scalars(sa.select(Delivery))
                  if d.message.recipient.name == "Anna Peeters"}
    assert states == {"email": DeliveryState.VIEWED, "portal": DeliveryState.VIEWED}


def test_the_audit_trail_tells_what_happened_to_an_invoice(herald, smtp_peer):
    runner = herald.test_cli_runner()
    runner.invoke(args=["runs", "create", "--rate", "6000", "--window", "0-24", "--weekends",
                        "--start"])
    _dispatch(herald)
    trail = runner.invoke(args=["audit", "trail", "INV-1"])
    assert trail.exit_code == 0, trail.output
    lines = trail.output.splitlines()
    kinds = [re.search(r"\s([a-z_]+\.[a-z_]+)\s", line).group(1) for line in lines[:-1]]
    # From creation to delivery: the invoice, its message, each of its two deliveries.
    assert kinds[:2] == ["invoice.imported", "invoice.issued"]
    assert "preference.resolved" in kinds
    assert kinds.count("delivery.planned") == 2 and kinds.count("delivery.sent") == 2
    assert any("(email)" in line and "delivery.sent" in line for line in lines)
    assert not any("INV-2" in line for line in lines)  # another customer's invoice
    assert lines[-1] == f"{len(kinds)} events."

    exported = runner.invoke(args=["audit", "trail", "INV-1", "--csv"]).output.splitlines()
    assert exported[0] == "event_id,at,about,kind,actor,details,hash"
    assert len(exported) == len(kinds) + 1
    missing = runner.invoke(args=["audit", "trail", "INV-404"])
    assert missing.exit_code != 0 and "there is no document 'INV-404'" in missing.output
