"""A finance approver approves a refund on the ops console's Approvals page, in Chromium,
checked with axe-core on a desktop and a (dark) phone; screenshots under test-artifacts/."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from playwright.sync_api import expect

from portal.models import Invoice, PaymentMethod, Role
from portal.models.refunds import RefundKind, RefundRequest, RefundStatus
from portal.payments import record_payment
from portal.refunds import create_request
from tests.browser.conftest import Tab
from tests.browser.seed import PASSWORD, Person
from tests.factories import make_user


def _refund_waiting(live_server) -> tuple[int, str]:
    """A customer of the test's own who paid an invoice in full and asks all of it back."""
    customer = live_server.new_customer(invoices=1, sign_in=False)
    [number] = customer.invoices
    with live_server.database() as session:
        invoice = session.scalars(sa.select(Invoice).where(Invoice.number == number)).one()
        record_payment(session, invoice, amount=invoice.payable_amount,
                       received_at=datetime(2026, 10, 5, tzinfo=UTC),
                       method=PaymentMethod.BANK_TRANSFER, provider="bank",
                       provider_reference=f"paid-{number}", actor="test")
        request = create_request(session, invoice, kind=RefundKind.REFUND,
                                 amount=invoice.payable_amount,
                                 reason="Moved abroad, IBAN BE68 5390 0754 7034",
                                 context={"call_id": f"CALL-{number}", "agent": "Marta"},
                                 actor="api:call centre", auto_approve_limit=Decimal("0"))
        session.flush()
        return request.id, number


def test_finance_approver_approves_a_refund(tab: Tab, live_server):
    request_id, number = _refund_waiting(live_server)
    email = f"finance-{tab.viewport}@example.com"
    with live_server.database() as session:
        make_user(session, email=email, role=Role.FINANCE_APPROVER, password=PASSWORD)
    page = tab.page
    tab.sign_in(Person(email=email, customer_number="", language="en", invoices=()))
    tab.check("ops-overview")
    if tab.is_phone:
        tab.goto("/ops/approvals")
    else:
        page.get_by_role("link", name="Approvals").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Approvals")
    card = page.locator(f"#request-{request_id}")
    expect(card).to_contain_text(number)
    expect(card).to_contain_text(f"CALL-{number}")
    expect(card).to_contain_text("[IBAN ending 7034]")  # masked before it was stored
    tab.check("approvals")
    card.get_by_label(re.compile("Note")).fill("Proof of move seen")
    card.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    expect(page.locator("main")).to_contain_text(f"Request {request_id} approved")
    expect(page.locator(f"#request-{request_id}")).to_have_count(0)
    expect(page.get_by_role("table")).to_contain_text("Proof of move seen")
    tab.check("approved")
    with live_server.database() as session:
        request = session.get(RefundRequest, request_id)
        assert request.status is RefundStatus.APPROVED and request.payment_id is not None
        assert request.decided_by.endswith(f":finance_approver:{email}")
