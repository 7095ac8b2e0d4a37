"""The Approvals page: finance approvers and admins decide refund and credit requests."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from distribution.events import events_for
from portal.issuing import invoice_key
from portal.models import InvoiceStatus, Payment, PaymentKind, PaymentMethod, Role
from portal.models.refunds import RefundKind, RefundRequest, RefundStatus
from portal.payments import record_payment
from portal.refunds import create_request
from tests.factories import make_user
from tests.portal.ops_admin.helpers import make_admin, sign_in_admin
from tests.portal.pay_helpers import bill
from tests.portal.test_web import sign_in

NO_AUTO = Decimal("0")


@pytest.fixture
def requests_(session):
    """Bob paid INV-2 in full and asks 80.00 back; Alice asks a 30.00 credit on INV-1."""
    billed = bill(session)
    record_payment(session, billed.inv2, amount=Decimal("120.15"),
                   received_at=datetime(2026, 10, 5, tzinfo=UTC),
                   method=PaymentMethod.CARD, provider="bank", provider_reference="line-2",
                   actor="test")
    refund = create_request(session, billed.inv2, kind=RefundKind.REFUND,
                            amount=Decimal("80.00"), reason="Moved out, card 4111111111111111",
                            context={"call_id": "CALL-9", "crm_url": "https://crm.test/r/9"},
                            actor="api:crm", auto_approve_limit=NO_AUTO)
    credit = create_request(session, billed.inv1, kind=RefundKind.CREDIT,
                            amount=Decimal("30.00"), reason="Outage in October",
                            context={"agent": "Marta"}, actor="api:crm",
                            auto_approve_limit=NO_AUTO)
    for role in (Role.FINANCE_APPROVER, Role.SUPPORT_AGENT, Role.BILLING_OPERATOR,
                 Role.AUDITOR):
        make_user(session, email=f"{role.value}@example.com", role=role)
    make_user(session, email="alice@example.com", customer=billed.alice)
    session.flush()
    return refund, credit


def _token(client) -> str:
    page = client.get("/ops/approvals")
    assert page.status_code == 200, page.status_code
    return re.search(rb'"X-CSRFToken": "([^"]+)"', page.data).group(1).decode()


def test_a_finance_approver_sees_and_approves_a_refund(client, session, requests_):
    refund, _credit = requests_
    sign_in(client, "finance_approver@example.com")
    page = client.get("/ops/approvals")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="/ops/approvals"' in html  # in the navigation
    assert "INV-2" in html and "INV-1" in html and "CALL-9" in html
    assert "Moved out, card [card number ending 1111]" in html
    assert "4111111111111111" not in html
    token = _token(client)
    response = client.post(f"/ops/approvals/{refund.id}", data={
        "csrf_token": token, "decision": "approve", "note": "Checked the move-out date"})
    assert response.status_code == 303, response.data
    session.expire_all()
    refund = session.get(RefundRequest, refund.id)
    assert refund.status is RefundStatus.APPROVED and not refund.auto_approved
    assert refund.decided_by.startswith("staff:") and \
        refund.decided_by.endswith(":finance_approver:finance_approver@example.com")
    payment = session.get(Payment, refund.payment_id)
    assert payment.kind is PaymentKind.REFUND and payment.method is PaymentMethod.CARD
    [decided] = [e for e in events_for(session, "invoice", invoice_key(refund.invoice))
                 if e.kind == "refund.decided" and e.payload["refund_request_id"] == refund.id]
    assert decided.actor == refund.decided_by
    assert decided.payload["note"] == "Checked the move-out date"
    # Deciding again changes nothing.
    again = client.post(f"/ops/approvals/{refund.id}", data={
        "csrf_token": token, "decision": "reject", "note": "no"})
    assert again.status_code == 409
    assert b"already decided" in again.data
    session.expire_all()
    assert session.get(RefundRequest, refund.id).status is RefundStatus.APPROVED
    followed = client.get("/ops/approvals").get_data(as_text=True)
    assert "Checked the move-out date" in followed  # among the latest decisions


def test_rejecting_needs_a_note_and_csrf(client, session, requests_):
    _refund, credit = requests_
    sign_in(client, "finance_approver@example.com")
    token = _token(client)
    no_csrf = client.post(f"/ops/approvals/{credit.id}", data={"decision": "reject",
                                                               "note": "x"})
    assert no_csrf.status_code == 400
    no_note = client.post(f"/ops/approvals/{credit.id}", data={
        "csrf_token": token, "decision": "reject", "note": "  "})
    assert no_note.status_code == 422
    bad = client.post(f"/ops/approvals/{credit.id}", data={
        "csrf_token": token, "decision": "maybe", "note": "x"})
    assert bad.status_code == 422
    session.expire_all()
    assert session.get(RefundRequest, credit.id).status is RefundStatus.PENDING
    rejected = client.post(f"/ops/approvals/{credit.id}", data={
        "csrf_token": token, "decision": "reject", "note": "Outage credit already given"})
    assert rejected.status_code == 303
    session.expire_all()
    credit = session.get(RefundRequest, credit.id)
    assert credit.status is RefundStatus.REJECTED and credit.payment_id is None
    assert credit.decision_note == "Outage credit already given"
    assert client.post("/ops/approvals/999999", data={
        "csrf_token": token, "decision": "approve"}).status_code == 404


def test_an_admin_approves_a_credit(client, session, requests_):
    _refund, credit = requests_
    admin = make_admin(session)
    sign_in_admin(client, admin)
    token = _token(client)
    response = client.post(f"/ops/approvals/{credit.id}", data={
        "csrf_token": token, "decision": "approve", "note": ""})
    assert response.status_code == 303
    session.expire_all()
    credit = session.get(RefundRequest, credit.id)
    assert credit.status is RefundStatus.APPROVED and credit.payment_id is None
    [decided] = [e for e in events_for(session, "invoice", invoice_key(credit.invoice))
                 if e.kind == "refund.decided" and e.payload["refund_request_id"] == credit.id]
    assert decided.payload["credit_note_to_issue"] == {
        "preceding_invoice_number": "INV-1", "amount": "30.00", "currency": "EUR"}
    assert session.scalar(sa.select(sa.func.count(Payment.id)).where(
        Payment.kind == PaymentKind.REFUND)) == 0


@pytest.mark.parametrize("email", ["support_agent@example.com", "billing_operator@example.com",
                                   "auditor@example.com", "alice@example.com"])
def test_other_roles_are_refused(client, session, requests_, email):
    refund, _credit = requests_
    sign_in(client, email)
    assert client.get("/ops/approvals").status_code == 403
    # A token from a page this user may see: the refusal is the role, not the CSRF check.
    page = client.get("/ops" if "alice" not in email else "/invoices")
    token = re.search(rb'"X-CSRFToken": "([^"]+)"', page.data).group(1).decode()
    response = client.post(f"/ops/approvals/{refund.id}", data={
        "csrf_token": token, "decision": "approve", "note": "me too"})
    assert response.status_code == 403
    assert b'href="/ops/approvals"' not in page.data
    session.expire_all()
    assert session.get(RefundRequest, refund.id).status is RefundStatus.PENDING


def test_signed_out_visitors_are_sent_to_sign_in(client, requests_):
    response = client.get("/ops/approvals")
    assert response.status_code in (302, 401)


def test_a_refund_on_an_invoice_voided_since_cannot_be_approved(client, session, requests_):
    refund, _credit = requests_
    refund.invoice.status = InvoiceStatus.VOID
    session.flush()
    sign_in(client, "finance_approver@example.com")
    response = client.post(f"/ops/approvals/{refund.id}", data={
        "csrf_token": _token(client), "decision": "approve", "note": "ok"})
    assert response.status_code == 409
    assert b"is void now" in response.data
    session.expire_all()
    refund = session.get(RefundRequest, refund.id)
    assert refund.status is RefundStatus.PENDING and refund.payment_id is None
