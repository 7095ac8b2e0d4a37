"""Customer lookup for support agents: find, read one page, resend, new pay link; roles enforced."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState, Message
from distribution.documents import DatabaseStore
from distribution.events import events_for
from distribution.recipients import Address, Recipient, add_address, mark_dead
from portal import create_app
from portal.db import get_database
from portal.issuing import invoice_key
from portal.migrate import upgrade
from portal.models import Account, Customer, Invoice, PayLink, PaymentMethod, Role
from portal.pay.links import LinkState, check_token, issue_link
from portal.payments import record_payment
from portal.recipients_sync import sync_customer
from portal.tasks import render_batch
from tests.factories import make_user
from tests.peers import smtp as smtp_peers
from tests.portal.pay_helpers import Billed, bill
from tests.portal.test_web import sign_in

smtp_peer = smtp_peers.smtp_peer


@pytest.fixture
def billed(session) -> Billed:
    """Alice and Bob with an issued invoice each; Alice has a phone, an account, a payment,
    a verified email, an unverified one and a dead one; staff of every kind."""
    billed = bill(session)
    billed.alice.contacts[0].phone = "+32 470 12 34 56"
    session.add(Account(organisation_id=billed.org.id, customer_id=billed.alice.id,
                        number="ACC-77", description="Fibre line"))
    recipient = sync_customer(session, billed.alice, actor="test")
    add_address(session, recipient, ChannelName.EMAIL, "unverified@example.com", actor="test")
    dead = add_address(session, recipient, ChannelName.EMAIL, "old@example.com", verified=True,
                       actor="test")
    session.flush()
    mark_dead(session, dead, "SMTP 550 at RCPT: user unknown", actor="worker")
    sync_customer(session, billed.bob, actor="test")
    record_payment(session, billed.inv1, amount=Decimal("20.15"),
                   received_at=datetime(2026, 10, 5, tzinfo=UTC),
                   method=PaymentMethod.BANK_TRANSFER, provider="bank",
                   provider_reference="line-1", actor="test")
    make_user(session, email="agent@example.com", role=Role.SUPPORT_AGENT)
    make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR)
    make_user(session, email="auditor@example.com", role=Role.AUDITOR)
    make_user(session, email="alice@example.com", customer=billed.alice)
    session.flush()
    return billed


def _token(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return re.search(rb'"X-CSRFToken": "([^"]+)"', page.data).group(1).decode()


def _address(session, value: str) -> Address:
    return session.scalars(sa.select(Address).where(Address.value == value)).one()


@pytest.mark.parametrize("query", ["C1@EXAMPLE.COM", "+32470123456", "+32 470-12.34.56", "C1",
                                   "ACC-77", "INV-1"])
def test_a_customer_is_found_by_what_the_caller_knows(client, session, billed, query):
    sign_in(client, "agent@example.com")
    response = client.get("/ops/customers", query_string={"q": query})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/ops/customers/{billed.alice.id}")


def test_an_address_only_distribution_knows_finds_the_customer_too(client, session, billed):
    sign_in(client, "agent@example.com")
    response = client.get("/ops/customers?q=unverified@example.com")
    assert response.headers["Location"].endswith(f"/ops/customers/{billed.alice.id}")


def test_several_matches_are_listed_and_none_is_said(client, session, billed):
    billed.bob.contacts[0].phone = "+32470123456"
    session.flush()
    sign_in(client, "agent@example.com")
    page = client.get("/ops/customers?q=%2B32470123456").get_data(as_text=True)
    assert "Alice" in page and "Bob" in page and "phone number" in page
    nothing = client.get("/ops/customers?q=nobody@example.com").get_data(as_text=True)
    assert "No customer has this email address" in nothing


def test_the_customer_page_tells_the_whole_story(client, session, billed):
    sign_in(client, "auditor@example.com")
    page = client.get(f"/ops/customers/{billed.alice.id}").get_data(as_text=True)
    assert "Alice" in page and "+32 470 12 34 56" in page and "ACC-77" in page
    assert "old@example.com" in page and "dead since" in page
    assert "unverified@example.com" in page
    assert f'href="/ops/invoices/{billed.inv1.id}/trail"' in page
    assert "Partially paid" in page and "€100.00" in page  # 120.15 less 20.15
    assert "€20.15" in page and "bank transfer" in page
    assert "Bob" not in page and "INV-2" not in page
    # Read-only for the auditor.
    assert "Resend now" not in page and "Issue a new link" not in page
    missing = billed.bob.id + 1000
    assert client.get(f"/ops/customers/{missing}").status_code == 404


def test_resend_choices_are_verified_working_addresses_only(client, session, billed):
    sign_in(client, "agent@example.com")
    page = client.get(f"/ops/customers/{billed.alice.id}").get_data(as_text=True)
    resend = page.split('id="resend-heading"')[1].split("</form>")[0]
    assert "c1@example.com" in resend
    assert "unverified@example.com" not in resend and "old@example.com" not in resend
    assert "INV-1" in resend and "INV-2" not in resend


def test_agent_resends_a_document_as_a_new_message_with_a_logged_reason(client, session,
                                                                        billed):
    sign_in(client, "agent@example.com")
    path = f"/ops/customers/{billed.alice.id}"
    address = _address(session, "c1@example.com")
    response = client.post(f"{path}/resend", data={
        "csrf_token": _token(client, path), "invoice": str(billed.inv1.id),
        "target": str(address.id), "reason": "caller never got the email"})
    assert response.status_code == 302, response.data
    assert "is on its way" in client.get(path).get_data(as_text=True)
    session.expire_all()
    message = session.scalars(sa.select(Message).where(
        Message.subject_key.startswith(f"resend:{invoice_key(billed.inv1)}:"))).one()
    [delivery] = session.scalars(sa.select(Delivery).where(Delivery.message_id == message.id))
    assert delivery.channel is ChannelName.EMAIL and delivery.address_id == address.id
    assert delivery.state is DeliveryState.RELEASED  # sent at once, not waiting for a wave
    assert message.parameters["number"] == "INV-1" and "/pay/t/" in message.link
    [logged] = [e for e in events_for(session, "invoice", invoice_key(billed.inv1))
                if e.kind == "invoice.resent_by_support"]
    assert logged.payload["reason"] == "caller never got the email"
    assert logged.payload["address"] == "c1@example.com"
    assert logged.payload["delivery_id"] == delivery.id
    assert "support_agent:agent@example.com" in logged.actor
    trail = client.get(f"/ops/invoices/{billed.inv1.id}/trail").get_data(as_text=True)
    assert "invoice.resent_by_support" in trail and "message.sent_by_hand" in trail


def test_a_resend_without_reason_or_to_a_bad_address_sends_nothing(client, session, billed):
    sign_in(client, "agent@example.com")
    path = f"/ops/customers/{billed.alice.id}"
    token = _token(client, path)
    good = _address(session, "c1@example.com").id
    no_reason = client.post(f"{path}/resend", data={
        "csrf_token": token, "invoice": str(billed.inv1.id), "target": str(good), "reason": ""})
    assert no_reason.status_code == 422 and b"This field is required" in no_reason.data
    for value in ("old@example.com", "unverified@example.com", "c2@example.com"):
        refused = client.post(f"{path}/resend", data={
            "csrf_token": token, "invoice": str(billed.inv1.id),
            "target": str(_address(session, value).id), "reason": "try"})
        assert refused.status_code == 422, value
    bobs = client.post(f"{path}/resend", data={
        "csrf_token": token, "invoice": str(billed.inv2.id), "target": str(good),
        "reason": "try"})
    assert bobs.status_code in (404, 422)
    assert session.scalar(sa.select(sa.func.count()).select_from(Message).where(
        Message.subject_key.startswith("resend:"))) == 0


def test_a_new_link_is_shown_once_and_the_old_one_stops_working(client, session, billed):
    _old, old_token = issue_link(session, billed.inv1, days=30, purpose="message", actor="t")
    session.flush()
    sign_in(client, "agent@example.com")
    path = f"/ops/customers/{billed.alice.id}"
    response = client.post(f"{path}/pay-link", data={
        "csrf_token": _token(client, path), "invoice": str(billed.inv1.id), "target": "show"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    token = re.search(r"/pay/t/([\w-]+)", page).group(1)
    session.expire_all()
    assert check_token(session, token).state == LinkState.VALID
    assert check_token(session, old_token).state == LinkState.REVOKED
    assert "no-store" in response.headers.get("Cache-Control", "")
    assert token not in client.get(path).get_data(as_text=True)  # shown once
    [handed] = [e for e in events_for(session, "invoice", invoice_key(billed.inv1))
                if e.kind == "pay_link.handed_over"]
    assert handed.payload["how"] == "shown" and token not in str(handed.payload)


def test_a_new_link_can_be_emailed_to_a_verified_address_only(client, session, billed):
    sign_in(client, "ops@example.com")
    path = f"/ops/customers/{billed.alice.id}"
    token = _token(client, path)
    refused = client.post(f"{path}/pay-link", data={
        "csrf_token": token, "invoice": str(billed.inv1.id),
        "target": str(_address(session, "unverified@example.com").id)})
    assert refused.status_code == 422
    sent = client.post(f"{path}/pay-link", data={
        "csrf_token": token, "invoice": str(billed.inv1.id),
        "target": str(_address(session, "c1@example.com").id)})
    assert sent.status_code == 302
    session.expire_all()
    [handed] = [e for e in events_for(session, "invoice", invoice_key(billed.inv1))
                if e.kind == "pay_link.handed_over"]
    assert handed.payload == {"link_id": handed.payload["link_id"], "how": "email",
                              "address": "c1@example.com"}
    assert session.get(PayLink, handed.payload["link_id"]).purpose == "operator"


def test_roles_and_csrf(client, session, billed):
    path = f"/ops/customers/{billed.alice.id}"
    sign_in(client, "alice@example.com")
    assert client.get("/ops/customers").status_code == 403
    assert client.get(path).status_code == 403
    token = _token(client, "/invoices")
    client.post("/sign-out", data={"csrf_token": token})
    sign_in(client, "auditor@example.com")
    token = _token(client, path)
    address = str(_address(session, "c1@example.com").id)
    assert client.post(f"{path}/resend", data={
        "csrf_token": token, "invoice": str(billed.inv1.id), "target": address,
        "reason": "x"}).status_code == 403
    assert client.post(f"{path}/pay-link", data={
        "csrf_token": token, "invoice": str(billed.inv1.id),
        "target": "show"}).status_code == 403
    client.post("/sign-out", data={"csrf_token": token})
    sign_in(client, "agent@example.com")
    assert client.post(f"{path}/resend", data={
        "invoice": str(billed.inv1.id), "target": address, "reason": "x"}).status_code == 400
    assert client.post(f"{path}/pay-link", data={
        "invoice": str(billed.inv1.id), "target": "show"}).status_code == 400
    assert client.post(f"/ops/customers/{billed.bob.id + 1000}/resend", data={
        "csrf_token": _token(client, path), "invoice": "1", "target": "portal",
        "reason": "x"}).status_code == 404
    assert session.scalar(sa.select(sa.func.count()).select_from(PayLink).where(
        PayLink.purpose == "operator")) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(Recipient)) == 2


@pytest.fixture
def herald(databases, tmp_path, smtp_peer):
    """An app of its own: email to a real SMTP peer, tasks run at once; Alice, Bob, an agent."""
    app = create_app({
        "DATABASE_URL": databases.new_url(), "HERALD_INSTANCE_PATH": str(tmp_path),
        "MAIL_FROM": "billing@seller.example", "MAIL_FROM_NAME": "Testing Telecom",
        "SMTP_HOST": smtp_peer.host, "SMTP_PORT": str(smtp_peer.port),
        "HERALD_PUBLIC_URL": "https://portal.example", "HUEY_IMMEDIATE": True,
    })
    database = get_database(app)
    upgrade(database.engine)
    with database.session_scope() as session:
        billed = bill(session)
        sync_customer(session, billed.alice, actor="test")
        make_user(session, email="agent@example.com", role=Role.SUPPORT_AGENT)
        make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR)
        invoice_ids = [billed.inv1.id, billed.inv2.id]
    # Issued invoices have their PDF (the worker renders it after issuing).
    assert render_batch(database.sessionmaker, DatabaseStore(), "https://portal.example",
                        invoice_ids).rendered == 2
    yield app
    database.engine.dispose()


def test_a_resent_invoice_reaches_the_mailbox_at_once(herald, smtp_peer):
    database = get_database(herald)
    with database.session_scope() as session:
        alice = session.scalars(sa.select(Customer).where(Customer.number == "C1")).one()
        invoice_id = session.scalars(sa.select(Invoice.id).where(Invoice.number == "INV-1")).one()
        address_id = _address(session, "c1@example.com").id
        path = f"/ops/customers/{alice.id}"
    client = herald.test_client()
    sign_in(client, "agent@example.com")
    response = client.post(f"{path}/resend", data={
        "csrf_token": _token(client, path), "invoice": str(invoice_id),
        "target": str(address_id), "reason": "caller never got it"})
    assert response.status_code == 302
    [mail] = [m.parsed() for m in smtp_peer.messages]  # no dispatcher tick needed
    assert mail["To"].addresses[0].addr_spec == "c1@example.com"
    assert "INV-1" in mail["Subject"]
    assert [a.get_filename() for a in mail.iter_attachments()] == ["INV-1.pdf"]
    with database.session_scope() as session:
        delivery = session.scalars(sa.select(Delivery).join(Message).where(
            Message.subject_key.startswith("resend:"))).one()
        assert delivery.state is DeliveryState.SENT
