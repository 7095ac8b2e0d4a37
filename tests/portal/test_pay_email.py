"""Through real peers: a receipt after a Stripe payment, and a fresh link from the recovery page."""

from __future__ import annotations

import json
import re
import time

import pytest
import sqlalchemy as sa

from distribution.deliveries import Delivery, DeliveryState
from distribution.dispatcher import tick
from portal import create_app
from portal.db import get_database
from portal.migrate import upgrade
from portal.models import Invoice, InvoiceStatus
from portal.pay.links import issue_link, public_id
from portal.queue import get_tasks
from tests.peers import smtp as smtp_peers
from tests.peers import stripe_api
from tests.peers.stripe_api import SECRET_KEY, WEBHOOK_SECRET, sign
from tests.portal.pay_helpers import bill, csrf_from

smtp_peer = smtp_peers.smtp_peer
stripe_peer = stripe_api.stripe_peer


@pytest.fixture
def herald(databases, tmp_path, smtp_peer, stripe_peer):
    """An app of its own: email to the SMTP peer, Stripe to its stand-in, tasks run at once."""
    app = create_app({
        "DATABASE_URL": databases.new_url(), "HERALD_INSTANCE_PATH": str(tmp_path),
        "MAIL_FROM": "billing@seller.example", "MAIL_FROM_NAME": "Testing Telecom",
        "SMTP_HOST": smtp_peer.host, "SMTP_PORT": str(smtp_peer.port),
        "HERALD_PUBLIC_URL": "https://portal.example", "HUEY_IMMEDIATE": True,
        "STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe_peer.api_base,
    })
    database = get_database(app)
    upgrade(database.engine)
    with database.session_scope() as session:
        bill(session, alice_language="nl")
    yield app
    database.engine.dispose()


def _dispatch(app, seconds: float = 10.0) -> None:
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
        time.sleep(0.05)


def _invoice(app, number):
    with get_database(app).session_scope() as session:
        invoice = session.scalars(sa.select(Invoice).where(Invoice.number == number)).one()
        return invoice.id, public_id(invoice), invoice.status


def test_a_stripe_payment_brings_a_receipt_in_the_customers_language(herald, smtp_peer,
                                                                     stripe_peer):
    invoice_id, pid, _ = _invoice(herald, "INV-1")
    checkout = stripe_peer.create_session({"line_items": [{"quantity": "1", "price_data": {
        "currency": "eur", "unit_amount": "12015"}}],
        "metadata": {"herald_invoice_id": str(invoice_id)}})
    payload = json.dumps(stripe_peer.completed_event(checkout["id"])).encode()
    client = herald.test_client()
    response = client.post("/pay/webhooks/stripe", data=payload,
                           headers={"Stripe-Signature": sign(payload)})
    assert response.status_code == 200
    assert _invoice(herald, "INV-1")[2] is InvoiceStatus.PAID
    _dispatch(herald)
    [mail] = [m.parsed() for m in smtp_peer.messages]
    assert mail["To"].addresses[0].addr_spec == "c1@example.com"
    assert mail["Subject"] == "Betaling ontvangen voor INV-1"
    body = mail.get_body(("plain",)).get_content().replace("\xa0", " ")
    assert "Wij ontvingen € 120,15 voor factuur INV-1" in body
    link = re.search(r"https://portal\.example(/pay/t/[\w-]+)", body).group(1)
    opened = client.get(link)
    assert opened.status_code == 302 and opened.location == f"/pay/{pid}"
    paid_page = client.get(opened.location).get_data(as_text=True)
    assert 'class="pay-paid"' in paid_page and f'action="/pay/{pid}/pay"' not in paid_page


def test_the_recovery_page_emails_a_fresh_link_that_works(herald, smtp_peer):
    _, pid, _ = _invoice(herald, "INV-1")
    client = herald.test_client()
    page = client.get(f"/pay/{pid}")
    response = client.post(f"/pay/{pid}/recover", data={"csrf_token": csrf_from(page.data),
                                                        "email": "c1@example.com"})
    assert response.status_code == 200 and b"Check your email" in response.data
    [mail] = [m.parsed() for m in smtp_peer.messages]
    assert mail["To"].addresses[0].addr_spec == "c1@example.com"
    assert mail["Subject"] == "Uw link naar factuur INV-1"
    body = mail.get_body(("plain",)).get_content()
    link = re.search(r"https://portal\.example(/pay/t/[\w-]+)", body).group(1)
    visitor = herald.test_client()  # another browser: the link alone opens the invoice
    assert visitor.get(link).status_code == 302
    assert "Factuur INV-1" in visitor.get(f"/pay/{pid}").get_data(as_text=True)  # in Dutch
    # An address that is not the customer's gets the same page and no email.
    client.post(f"/pay/{pid}/recover", data={"csrf_token": csrf_from(page.data),
                                             "email": "someone@example.com"})
    assert len(smtp_peer.messages) == 1


def test_a_link_opens_the_pages_in_the_customers_language(herald):
    client = herald.test_client()
    with get_database(herald).session_scope() as session:
        invoice = session.scalars(sa.select(Invoice).where(Invoice.number == "INV-1")).one()
        _, token = issue_link(session, invoice, days=30, purpose="operator", actor="test")
    opened = client.get(f"/pay/t/{token}", follow_redirects=True)
    assert b'<html lang="nl">' in opened.data  # Alice reads Dutch
