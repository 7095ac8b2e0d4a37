"""Disputing an invoice in a real browser: the form, its errors, and the dispute to follow."""

from __future__ import annotations

import re
from decimal import Decimal

import sqlalchemy as sa
from playwright.sync_api import expect

from distribution.events import events_for
from portal.issuing import invoice_key
from portal.models import Customer, Invoice, InvoiceStatus
from portal.models.disputes import Dispute, DisputeReason, DisputeStatus
from tests.browser.conftest import Tab


def test_dispute_one_line_of_an_invoice(tab: Tab, live_server):
    person = live_server.new_customer()
    number = person.invoices[0]
    page = tab.page
    tab.sign_in(person)
    tab.check("invoice-list")
    page.get_by_role("link", name=number, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {number}")
    tab.check("invoice")

    page.get_by_role("button", name="Dispute this invoice").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Dispute invoice {number}")
    tab.check("dispute-form")

    # Sent empty, the form says what is missing and keeps the visitor on it.
    page.get_by_role("button", name="Send my dispute").click()
    expect(page.get_by_role("alert")).to_contain_text("Please correct the fields marked below")
    expect(page.get_by_text("Choose what is wrong.")).to_be_visible()
    tab.check("dispute-form-errors")

    page.get_by_label("Electricity").check()
    page.get_by_label("The amount or price is wrong").check()
    page.get_by_label("Tell us more").fill("I used 129 kWh, not 229.")
    page.get_by_label("Amount you dispute").fill("28,90")
    page.get_by_role("button", name="Send my dispute").click()
    expect(page).to_have_url(re.compile(r"/disputes/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Dispute about invoice {number}")
    expect(page.get_by_text("Your dispute is registered")).to_be_visible()
    expect(page.get_by_text("€28.90")).to_be_visible()
    tab.check("dispute")

    with live_server.database() as session:
        customer = session.scalars(sa.select(Customer).where(
            Customer.number == person.customer_number)).one()
        dispute = session.scalars(sa.select(Dispute).where(
            Dispute.customer_id == customer.id)).one()
        assert dispute.status is DisputeStatus.OPEN
        assert dispute.reason is DisputeReason.WRONG_AMOUNT
        assert dispute.amount == Decimal("28.90")
        assert [line.invoice_line.item_name for line in dispute.lines] == ["Electricity"]
        invoice = session.get(Invoice, dispute.invoice_id)
        assert invoice.status is InvoiceStatus.DISPUTED
        events = events_for(session, "invoice", invoice_key(invoice))
        assert "dispute.opened" in {e.kind for e in events}

    # The invoice page now says the invoice is disputed and links the dispute.
    page.get_by_role("link", name=number, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {number}")
    expect(page.get_by_role("link", name=re.compile(r"^Dispute of "))).to_be_visible()
    tab.check("invoice-disputed")
