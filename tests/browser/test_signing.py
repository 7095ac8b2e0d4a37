"""Signing a document from the portal with a typed signature, in a real browser.

The emailed-link flow (drawn with a finger on a phone, typed with the keyboard)
is in tests/portal/test_signing_browser.py; this is the signed-in customer's way
in: "Documents to sign" in the header.
"""

from __future__ import annotations

import re
from io import BytesIO

import sqlalchemy as sa
from playwright.sync_api import expect
from pypdf import PdfReader

from distribution.events import events_for
from portal.models import Invoice, RequestStatus, SignatureRequest, SigningMode
from portal.signing.context import SigningContext
from portal.signing.requests import SignerInput, request_invoice_signatures
from tests.browser.conftest import Tab

CONSENT = "I confirm the amounts of this invoice."


def _ask_to_sign(live_server, person) -> int:
    app = live_server.app
    with live_server.database() as session, app.app_context():
        invoice = session.scalars(sa.select(Invoice).where(
            Invoice.number == person.invoices[0])).one()
        request = request_invoice_signatures(
            session, invoice, [SignerInput(person.email, "Signing Customer")],
            mode=SigningMode.SIGN, consent_text=CONSENT, actor="browser-tests",
            context=SigningContext.from_app(app))
        return request.id


def test_sign_an_invoice_with_a_typed_name(tab: Tab, live_server):
    person = live_server.new_customer()
    request_id = _ask_to_sign(live_server, person)
    page = tab.page
    tab.sign_in(person)
    tab.check("invoice-list")
    page.get_by_role("link", name="Documents to sign").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Documents to sign")
    tab.check("documents-to-sign")
    page.get_by_role("link", name="Sign now").click()
    expect(page).to_have_url(re.compile(rf"/signatures/{request_id}$"))
    expect(page.get_by_text(CONSENT)).to_be_visible()
    tab.check("sign")

    # Neither consent nor a signature: the page says what is missing.
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Please check the fields marked below")
    tab.check("sign-errors")

    page.get_by_label("I have read the document and agree to the text above.").check()
    page.get_by_label("Type your full name").fill("Signing Customer")
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_text("Signed by everyone").first).to_be_visible()
    tab.check("signed")

    signed = page.get_by_role("link", name="The signed document with its certificate (PDF)")
    response = page.request.get(live_server.url + signed.get_attribute("href"))
    assert response.ok and response.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() or "" for p in PdfReader(BytesIO(response.body())).pages)
    assert "Signing Customer" in text

    with live_server.database() as session:
        request = session.get(SignatureRequest, request_id)
        assert request.status is RequestStatus.COMPLETED
        signature = request.signers[0].signature
        assert signature.typed_name == "Signing Customer"
        assert "HeadlessChrome" in signature.user_agent
        kinds = [e.kind for e in events_for(session, "signature_request", str(request_id))]
        assert "signature.signed" in kinds
