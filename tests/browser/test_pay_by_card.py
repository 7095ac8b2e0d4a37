"""Paying by card from a "review & pay" link, in a real browser, against the local Stripe
stand-in (tests/peers/stripe_api.py): the Checkout Session, the redirect to Stripe, the
signed webhook, and the customer back on the invoice seeing it paid.

Stripe's own checkout page is on the internet; the browser's request for it is
answered here with a placeholder page, and the payment is reported the way
Stripe reports it, by a signed ``checkout.session.completed`` webhook.
"""

from __future__ import annotations

import json
import re
import urllib.request
from decimal import Decimal

import sqlalchemy as sa
from playwright.sync_api import expect

from portal.models import Invoice, InvoiceStatus, Payment, PaymentMethod
from portal.pay.links import issue_link
from tests.browser.conftest import Tab
from tests.peers.stripe_api import sign

STRIPE_PAGE = """<!doctype html><html lang="en"><head><title>Stripe Checkout</title></head>
<body><main><h1>Stripe Checkout (stand-in)</h1></main></body></html>"""


def _post_webhook(url: str, event: dict) -> dict:
    payload = json.dumps(event).encode()
    request = urllib.request.Request(url, data=payload, method="POST", headers={
        "Content-Type": "application/json", "Stripe-Signature": sign(payload)})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_pay_by_card_from_a_link(tab: Tab, live_server):
    stripe = live_server.stripe
    person = live_server.new_customer()
    number = person.invoices[0]
    with live_server.database() as session:
        invoice = session.scalars(sa.select(Invoice).where(Invoice.number == number)).one()
        _link, token = issue_link(session, invoice, days=30, purpose="email",
                                  actor="browser-test")
    page = tab.page
    page.route("https://checkout.stripe.com/**",
               lambda route: route.fulfill(status=200, content_type="text/html",
                                           body=STRIPE_PAGE))
    tab.goto(f"/pay/t/{token}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {number}")
    tab.check("pay-page")
    pay_page = page.url

    page.get_by_label("Card or other online payment (Stripe)").check()
    page.get_by_label(re.compile("Amount to pay")).fill("120.15")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page).to_have_url(re.compile(r"^https://checkout\.stripe\.com/c/pay/cs_test_"))
    tab.screenshot(f"{tab.steps + 1:02d}-stripe-checkout")
    session_id = page.url.rsplit("/", 1)[1]
    created = stripe.requests[-1]["params"]
    assert created["line_items"][0]["price_data"] == {
        "currency": "eur", "unit_amount": "12015",
        "product_data": {"name": f"Testing Telecom {number}"}}
    assert created["success_url"] == f"{pay_page}?checkout=done"

    answer = _post_webhook(f"{live_server.url}/pay/webhooks/stripe",
                           stripe.completed_event(session_id))
    assert answer["received"] is True and answer["duplicate"] is False

    tab.goto(created["success_url"].removeprefix(live_server.url))
    expect(page.get_by_role("status").first).to_contain_text("Thank you")
    expect(page.get_by_text("This invoice is paid. Thank you.")).to_be_visible()
    expect(page.locator("section[aria-labelledby=payments-heading]")).to_contain_text("€120.15")
    tab.check("paid")

    with live_server.database() as session:
        invoice = session.scalars(sa.select(Invoice).where(Invoice.number == number)).one()
        payment = session.scalars(sa.select(Payment).where(
            Payment.invoice_id == invoice.id)).one()
        assert payment.method is PaymentMethod.CARD
        assert payment.amount == Decimal("120.15")
        assert invoice.status is InvoiceStatus.PAID
