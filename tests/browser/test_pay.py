"""From an email's "review & pay" link, on a desktop and a phone: see, download, pay by transfer;
an expired link leads to the page that asks for a fresh one."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import expect

from portal.models import Invoice
from portal.pay.links import issue_link
from tests.browser.conftest import Tab


def _link(live_server, number: str, *, expired: bool = False) -> str:
    with live_server.database() as session:
        invoice = session.scalars(sa.select(Invoice).where(Invoice.number == number)).one()
        link, token = issue_link(session, invoice, days=30, purpose="operator",
                                 actor="browser-test")
        if expired:
            link.expires_at = datetime.now(UTC) - timedelta(days=1)
    return f"/pay/t/{token}"


def test_a_link_opens_the_invoice_to_download_and_pay_by_transfer(tab: Tab, live_server):
    person = live_server.new_customer()
    number = person.invoices[0]
    page = tab.page
    tab.goto(_link(live_server, number))
    expect(page).to_have_url(re.compile(r"/pay/\d+-[0-9a-f]{16}$"))  # the token left the bar
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {number}")
    expect(page.get_by_text("€120.15").first).to_be_visible()
    tab.check("pay-page")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download the invoice (PDF)").click()
    assert Path(info.value.path()).read_bytes().startswith(b"%PDF-")

    page.get_by_label("Bank transfer").check()
    page.get_by_label(re.compile("Amount to pay")).fill("20.15")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Pay invoice {number} by bank transfer")
    expect(page.get_by_text("€20.15")).to_be_visible()
    qr = page.get_by_role("img", name=re.compile("QR code for your banking app"))
    expect(qr).to_be_visible()
    # The SVG loaded under the CSP: decode() waits for it (and fails if it was refused);
    # reading naturalWidth at once raced the image's loading on a busy machine.
    assert qr.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    tab.check("bank-transfer")

    # The link opened this invoice only: the account pages still ask to sign in.
    tab.goto("/invoices")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    tab.check("no-account-pages")


def test_an_expired_link_leads_to_a_fresh_one(tab: Tab, live_server):
    person = live_server.new_customer()
    page = tab.page
    tab.goto(_link(live_server, person.invoices[0], expired=True))
    expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired")
    tab.check("expired")
    page.get_by_role("button", name="Get a new link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Get a new link to your invoice")
    tab.check("recover")
    page.get_by_role("button", name="Email me a new link").click()
    expect(page.get_by_text("Enter the email address your invoices are sent to.")).to_be_visible()
    tab.check("recover-empty")
    page.get_by_label("Your billing email address").fill(person.email)
    page.get_by_role("button", name="Email me a new link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    tab.check("recover-sent")
