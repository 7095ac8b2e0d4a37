"""Setting how Herald reaches you, in a real browser: channels, an email address, the Peppol ID,
and the service worker that web push needs.

Headless Chromium cannot get a push subscription offline (no push service), so
the browser part of web push stops at the registered service worker and the
"turn on" button; the subscription itself is tested against a real push
service in tests/portal/test_preferences_push.py.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from distribution.preferences import Preference
from distribution.recipients import Recipient
from portal.models import Customer, CustomerEmailAddress
from portal.recipients_sync import recipient_key
from tests.browser.conftest import Tab


@pytest.fixture
def push_configured(live_server, monkeypatch):
    """Web push on for the live server (a VAPID contact is all it lacks on plain http)."""
    settings = dataclasses.replace(live_server.app.config["HERALD"],
                                   vapid_subject="mailto:ops@herald.test")
    monkeypatch.setitem(live_server.app.config, "HERALD", settings)


def test_change_how_we_reach_you(tab: Tab, live_server, push_configured):
    person = live_server.new_customer()
    page = tab.page
    tab.sign_in(person)
    tab.check("invoices")
    if tab.is_phone and not page.get_by_role("link", name="How we reach you").is_visible():
        pytest.fail("the nav link must be reachable on a phone")
    page.get_by_role("link", name="How we reach you").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("How we reach you")
    # The page registers the service worker and offers push once it is ready.
    expect(page.get_by_role("button", name="Turn on notifications on this device")).to_be_visible()
    scope = page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
    assert scope == live_server.url + "/"
    tab.check("preferences")

    invoices = page.locator("#type-invoice")
    invoices.get_by_label("My own choice for these:").check()
    invoices.get_by_label("Send by").select_option("email")
    invoices.get_by_label("Attach the e-invoice file (UBL XML) to emails").check()
    page.locator("#type-reminder").get_by_label("Do not send these; I look in the portal").check()
    page.get_by_role("button", name="Save my choices").click()
    expect(page.get_by_text("Saved. Each message type below says")).to_be_visible()
    expect(page.locator("#effect-reminder")).to_have_text(re.compile("We do not send these"))
    tab.check("preferences-saved")

    email = page.get_by_role("textbox", name=re.compile("^Email address"))
    email.fill("not an address")
    page.get_by_role("button", name="Add and send the link").click()
    expect(page.get_by_text("Enter an email address like name@example.com.")).to_be_visible()
    tab.check("email-error")
    email.fill("accounts@example.org")
    page.get_by_role("button", name="Add and send the link").click()
    expect(page.get_by_text("Not confirmed yet")).to_be_visible()

    peppol = page.get_by_label("Peppol ID (scheme:identifier)")
    peppol.fill("0208:0123456748")
    page.get_by_role("button", name="Use this Peppol ID").click()
    expect(page.get_by_text("check digits of 0123456748 do not add up")).to_be_visible()
    tab.check("peppol-error")
    page.get_by_label("Peppol ID (scheme:identifier)").fill("0208:0123.456.749")
    page.get_by_role("button", name="Use this Peppol ID").click()
    expect(page.get_by_text("We send e-invoices to Peppol ID 0208:0123456749")).to_be_visible()
    tab.check("peppol-saved")

    with live_server.database() as session:
        customer = session.scalars(sa.select(Customer).where(
            Customer.number == person.customer_number)).one()
        recipient = session.scalars(sa.select(Recipient).where(
            Recipient.recipient_key == recipient_key(customer))).one()
        rows = {p.message_type: p for p in session.scalars(
            sa.select(Preference).where(Preference.recipient_id == recipient.id))}
        assert rows["invoice"].channels == ["email"]
        assert rows["invoice"].email_attachments == ["pdf", "ubl"]
        assert rows["reminder"].opted_out
        assert session.scalars(sa.select(CustomerEmailAddress.email).where(
            CustomerEmailAddress.customer_id == customer.id)).all() == ["accounts@example.org"]
        assert customer.peppol_endpoint_id == "0123456749"
