"""Signing and acknowledging: requests in order, the signer's page, evidence, the signed PDF."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from PIL import Image
from pypdf import PdfReader

from distribution.deliveries import Message
from distribution.documents import DatabaseStore
from distribution.events import Event, events_for, verify_chain
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.models import (
    Invoice,
    RequestStatus,
    Role,
    Signature,
    SignatureRequest,
    SignerStatus,
    SigningMode,
)
from portal.signing.context import SigningContext
from portal.signing.requests import (
    SignerInput,
    SigningError,
    request_invoice_signatures,
    request_upload_signatures,
)
from tests.factories import invoice_json, make_customer, make_organisation, make_user
from tests.portal.test_web import sign_in

CONSENT = "I confirm the adjusted amount of this invoice and agree to pay it."
BROWSER = {"User-Agent": "Mozilla/5.0 (Signing test phone)"}


@pytest.fixture
def world(session):
    """Two customers with one invoice each; Alice has a portal sign-in, so has Bob."""
    org = make_organisation(session)
    alice = make_customer(session, org, "C1", name="Alice")
    bob = make_customer(session, org, "C2", name="Bob")
    documents = [
        document_from_mapping(invoice_json("INV-A1", "C1"), Locator("t", "1"), source="json"),
        document_from_mapping(invoice_json("INV-B1", "C2"), Locator("t", "2"), source="json"),
    ]
    import_documents(session, documents, file="t", store=DatabaseStore())
    make_user(session, email="alice@example.com", customer=alice)
    make_user(session, email="bob@example.com", customer=bob)
    make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR)
    return alice, bob


def context(app) -> SigningContext:
    with app.app_context():
        return SigningContext.from_app(app)


def invoice(session, number: str) -> Invoice:
    return session.scalars(sa.select(Invoice).where(Invoice.number == number)).one()


def make_request(app, session, number="INV-A1", signers=("alice@example.com",
                                                         "anna@partner.example"),
                 mode=SigningMode.SIGN) -> SignatureRequest:
    return request_invoice_signatures(
        session, invoice(session, number), [SignerInput(e) for e in signers], mode=mode,
        consent_text=CONSENT, actor="test", context=context(app))


def link_of(session, request: SignatureRequest, position: int, reminder: int = 0) -> str:
    """The path in the message distribution made for that signer (what they received)."""
    key = f"signature:{request.id}:{position}" + (f":reminder:{reminder}" if reminder else "")
    message = session.scalars(sa.select(Message).where(Message.subject_key == key)).one()
    return "/" + message.link.split("/", 3)[3]


def csrf(page: bytes) -> str:
    return re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1).decode()


def header_csrf(page: bytes) -> str:
    return re.search(rb'"X-CSRFToken": "([^"]+)"', page).group(1).decode()


def kinds(session, request: SignatureRequest) -> list[str]:
    return [e.kind for e in events_for(session, "signature_request", str(request.id))]


def png_data_url(width=60, height=20) -> str:
    buffer = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 0, 0, 255)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# -- asking ---------------------------------------------------------------------------------

def test_a_request_asks_only_the_first_signer_and_keeps_only_token_hashes(app, session, world):
    request = make_request(app, session)
    first, second = request.signers
    assert (first.status, second.status) == (SignerStatus.ASKED, SignerStatus.WAITING)
    assert request.document_sha256 == invoice(session, "INV-A1").pdf_sha256
    keys = set(session.scalars(sa.select(Message.subject_key).where(
        Message.message_type == "signature_request")))
    assert keys == {f"signature:{request.id}:1"}
    token = link_of(session, request, 1).rsplit("/", 1)[1]
    assert first.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    # The token itself is in no signing row and no event.
    assert token not in str([e.payload for e in session.scalars(sa.select(Event))])
    assert kinds(session, request) == ["signature.created", "signature.requested"]


@pytest.mark.parametrize(("signers", "text", "message"), [
    ((), CONSENT, "at least one signer"),
    (("not-an-email",), CONSENT, "is not an email address"),
    (("a@example.com", "A@example.com"), CONSENT, "named twice"),
    (("a@example.com",), "   ", "consent text"),
])
def test_bad_requests_are_refused_and_write_nothing(app, session, world, signers, text,
                                                    message):
    with pytest.raises(SigningError, match=message):
        request_invoice_signatures(session, invoice(session, "INV-A1"),
                                   [SignerInput(e) for e in signers], mode=SigningMode.SIGN,
                                   consent_text=text, actor="test", context=context(app))
    assert session.scalar(sa.select(sa.func.count()).select_from(SignatureRequest)) == 0


def test_an_uploaded_pdf_can_be_signed_and_a_non_pdf_is_refused(app, session, world):
    alice, _ = world
    pdf = DatabaseStore().get(session, make_request(app, session, signers=["x@example.com"])
                              .document_sha256)
    request = request_upload_signatures(
        session, alice, pdf, title="Refund authorisation", signers=[SignerInput("x@example.com")],
        mode=SigningMode.ACKNOWLEDGE, consent_text=CONSENT, actor="test", context=context(app))
    assert request.title == "Refund authorisation" and request.invoice_id is None
    with pytest.raises(SigningError, match="pdf: the file is not a PDF"):
        request_upload_signatures(
            session, alice, b"hello", title="X", signers=[SignerInput("x@example.com")],
            mode=SigningMode.SIGN, consent_text=CONSENT, actor="test", context=context(app))


# -- the signer's page ----------------------------------------------------------------------

def test_the_link_shows_the_document_consent_and_both_ways_to_sign(app, client, session, world):
    request = make_request(app, session)
    page = client.get(link_of(session, request, 1), headers=BROWSER)
    assert page.status_code == 200
    html = page.data.decode()
    assert "<h1>Sign Invoice INV-A1</h1>" in html
    assert CONSENT in html and request.document_sha256 in html
    assert 'name="consent"' in html and 'name="typed_name"' in html
    assert 'name="drawn_signature"' in html and "<canvas" in html
    assert 'name="csrf_token"' in html
    assert "js/signature-pad.js" in html
    assert "<script>" not in html and " style=" not in html and " onclick" not in html
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    document = client.get(link_of(session, request, 1) + "/document.pdf")
    assert document.status_code == 200 and document.mimetype == "application/pdf"
    assert hashlib.sha256(document.data).hexdigest() == request.document_sha256
    viewed = events_for(session, "signature_request", str(request.id))[-1]
    assert viewed.kind == "signature.viewed"
    assert viewed.payload["user_agent"] == BROWSER["User-Agent"]
    client.get(link_of(session, request, 1))  # a second visit is not a second event
    assert kinds(session, request).count("signature.viewed") == 1


def test_unknown_tokens_are_404_and_a_waiting_signer_is_told_to_wait(app, client, session,
                                                                        world):
    request = make_request(app, session)
    assert client.get("/sign/not-a-token").status_code == 404
    assert client.get("/sign/not-a-token/document.pdf").status_code == 404
    # The second signer's link exists already (derived), but it is not their turn.
    from portal.signing.requests import signing_link

    second = signing_link(request.signers[1], context(app)).split("/", 3)[3]
    page = client.get("/" + second)
    assert page.status_code == 410 and b"It is not your turn yet" in page.data
    assert client.get("/" + second + "/document.pdf").status_code == 404


def test_signing_needs_consent_and_a_name_and_csrf(app, client, session, world):
    request = make_request(app, session)
    link = link_of(session, request, 1)
    token = csrf(client.get(link).data)
    no_csrf = client.post(link, data={"consent": "y", "typed_name": "Alice"})
    assert no_csrf.status_code == 400
    no_consent = client.post(link, data={"csrf_token": token, "typed_name": "Alice"})
    assert no_consent.status_code == 422 and b"Tick the box" in no_consent.data
    no_name = client.post(link, data={"csrf_token": token, "consent": "y"})
    assert no_name.status_code == 422 and b"Type your full name" in no_name.data
    assert session.scalar(sa.select(sa.func.count()).select_from(Signature)) == 0


@pytest.mark.parametrize("drawing", [
    "data:image/jpeg;base64,/9j/4AAQ",
    "data:image/png;base64,!!!not-base64!!!",
    "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nnot really").decode(),
    "data:image/png;base64," + "A" * 300_000,
])
def test_a_drawn_signature_must_be_a_small_real_png(app, client, session, world, drawing):
    request = make_request(app, session)
    link = link_of(session, request, 1)
    response = client.post(link, data={"csrf_token": csrf(client.get(link).data),
                                       "consent": "y", "drawn_signature": drawing})
    assert response.status_code == 422
    assert b"drawn signature" in response.data
    assert session.scalar(sa.select(sa.func.count()).select_from(Signature)) == 0


def test_two_signers_in_order_then_the_signed_pdf(app, client, session, world):
    request = make_request(app, session)
    first_link = link_of(session, request, 1)
    response = client.post(first_link, headers=BROWSER, data={
        "csrf_token": csrf(client.get(first_link).data), "consent": "y",
        "typed_name": "Alice Peeters"})
    assert response.status_code == 303
    first, second = request.signers
    session.refresh(first)
    session.refresh(second)
    assert (first.status, second.status) == (SignerStatus.SIGNED, SignerStatus.ASKED)
    signed = first.signature
    assert (signed.typed_name, signed.ip_address) == ("Alice Peeters", "127.0.0.1")
    assert signed.user_agent == BROWSER["User-Agent"]
    evidence = session.scalars(sa.select(Event).where(Event.kind == "signature.signed")).one()
    assert evidence.hash == signed.event_hash
    assert evidence.payload["document_sha256"] == request.document_sha256
    assert evidence.payload["consent_text"] == CONSENT
    assert evidence.payload["ip_address"] == "127.0.0.1"
    assert evidence.payload["user_agent"] == BROWSER["User-Agent"]
    # The used link now says so, plainly, and opens nothing.
    used = client.get(first_link)
    assert used.status_code == 200 and b"You signed this document on" in used.data
    assert b'name="consent"' not in used.data
    assert client.get(first_link + "/document.pdf").status_code == 404
    again = client.post(first_link, data={"csrf_token": csrf(client.get(
        link_of(session, request, 2)).data), "consent": "y", "typed_name": "Alice"})
    assert again.status_code == 200 and session.scalar(
        sa.select(sa.func.count()).select_from(Signature)) == 1

    drawing = png_data_url()
    second_link = link_of(session, request, 2)
    response = client.post(second_link, data={
        "csrf_token": csrf(client.get(second_link).data), "consent": "y",
        "drawn_signature": drawing})
    assert response.status_code == 303
    session.refresh(request)
    assert request.status is RequestStatus.COMPLETED
    pdf = DatabaseStore().get(session, request.signed_sha256)
    completed = events_for(session, "signature_request", str(request.id))[-1]
    assert completed.kind == "signature.completed"
    assert completed.payload["signed_sha256"] == hashlib.sha256(pdf).hexdigest()
    reader = PdfReader(io.BytesIO(pdf))
    original = PdfReader(io.BytesIO(DatabaseStore().get(session, request.document_sha256)))
    assert len(reader.pages) == len(original.pages) + 1
    text = " ".join(page.extract_text() for page in reader.pages[len(original.pages):])
    flat = re.sub(r"\s+", " ", text)
    assert "Signature certificate" in flat
    assert "Alice Peeters" in flat and "alice@example.com" in flat
    assert "anna@partner.example" in flat
    assert request.document_sha256 in flat.replace(" ", "")
    assert CONSENT in flat
    assert BROWSER["User-Agent"] in flat and "127.0.0.1" in flat
    for evidence_hash in completed.payload["evidence"]:
        assert evidence_hash in flat.replace(" ", "")
    assert kinds(session, request) == [
        "signature.created", "signature.requested", "signature.viewed", "signature.signed",
        "signature.requested", "signature.viewed", "signature.signed", "signature.completed"]
    assert verify_chain(session) is None


def test_declining_ends_the_request_and_later_signers_are_not_asked(app, client, session,
                                                                     world):
    request = make_request(app, session)
    link = link_of(session, request, 1)
    empty = client.post(link + "/decline", data={"csrf_token": csrf(client.get(link).data),
                                                 "decline-reason": ""})
    assert empty.status_code == 422 and b"Say why you decline" in empty.data
    response = client.post(link + "/decline", data={
        "csrf_token": csrf(client.get(link).data), "decline-reason": "The amount is wrong."})
    assert response.status_code == 303
    session.refresh(request)
    assert request.status is RequestStatus.DECLINED
    assert [s.status for s in request.signers] == [SignerStatus.DECLINED, SignerStatus.SKIPPED]
    declined = events_for(session, "signature_request", str(request.id))[-1]
    assert declined.kind == "signature.declined"
    assert declined.payload["reason"] == "The amount is wrong."
    assert b"You declined this document" in client.get(link).data
    assert session.scalars(sa.select(Message.subject_key).where(
        Message.subject_key.like(f"signature:{request.id}:2%"))).first() is None


def test_an_expired_link_says_so(app, client, session, world):
    request = make_request(app, session)
    request.expires_at = request.created_at - timedelta(seconds=1)
    session.flush()
    page = client.get(link_of(session, request, 1))
    assert page.status_code == 410 and b"This request has expired" in page.data


# -- in the portal --------------------------------------------------------------------------

def test_customers_see_their_own_requests_only(app, client, session, world):
    mine = make_request(app, session, signers=["alice@example.com"])
    theirs = make_request(app, session, number="INV-B1", signers=["bob@example.com"])
    sign_in(client, "alice@example.com")
    listing = client.get("/signatures")
    assert listing.status_code == 200
    assert b"Invoice INV-A1" in listing.data and b"Invoice INV-B1" not in listing.data
    assert b"Sign now" in listing.data
    for path in ("", "/document.pdf", "/signed.pdf"):
        assert client.get(f"/signatures/{theirs.id}{path}").status_code == 404
    assert client.post(f"/signatures/{theirs.id}/decline", data={
        "csrf_token": header_csrf(listing.data), "decline-reason": "no"}).status_code == 404
    page = client.get(f"/signatures/{mine.id}")
    assert page.status_code == 200 and b'name="consent"' in page.data
    assert client.get(f"/signatures/{mine.id}/signed.pdf").status_code == 404  # not yet
    response = client.post(f"/signatures/{mine.id}", data={
        "csrf_token": csrf(page.data), "consent": "y", "typed_name": "Alice"})
    assert response.status_code == 303
    session.refresh(mine)
    assert mine.status is RequestStatus.COMPLETED
    assert mine.signers[0].signature.user_id is not None
    done = client.get(f"/signatures/{mine.id}")
    assert b"Signed by everyone" in done.data and b"signed.pdf" in done.data
    signed = client.get(f"/signatures/{mine.id}/signed.pdf")
    assert hashlib.sha256(signed.data).hexdigest() == mine.signed_sha256


def test_a_customer_who_is_not_the_current_signer_only_follows(app, client, session, world):
    request = make_request(app, session, signers=["someone@partner.example"])
    sign_in(client, "alice@example.com")
    page = client.get(f"/signatures/{request.id}")
    assert page.status_code == 200 and b'name="consent"' not in page.data
    assert b"someone@partner.example" in page.data
    assert client.post(f"/signatures/{request.id}/decline", data={
        "csrf_token": header_csrf(page.data), "decline-reason": "no"}).status_code == 404
    assert client.post(f"/signatures/{request.id}", data={
        "csrf_token": header_csrf(page.data), "consent": "y", "typed_name": "A"}
    ).status_code == 404


def test_staff_and_visitors_cannot_use_the_customer_pages(app, client, session, world):
    request = make_request(app, session)
    assert client.get("/signatures").status_code == 302  # to sign-in
    sign_in(client, "ops@example.com")
    assert client.get(f"/signatures/{request.id}").status_code == 403


def test_the_invoice_page_and_the_menu_lead_to_the_request(app, client, session, world):
    request = make_request(app, session, signers=["alice@example.com"])
    sign_in(client, "alice@example.com")
    page = client.get("/invoices/INV-A1")
    assert page.status_code == 200
    assert f'href="/signatures/{request.id}"'.encode() in page.data
    assert b"To sign: Invoice INV-A1" in page.data
    assert b'href="/signatures">Documents to sign</a>' in page.data
    other = client.get("/invoices")
    assert b'href="/signatures">Documents to sign</a>' in other.data


def test_a_customer_declines_in_the_portal_and_downloads_the_document(app, client, session,
                                                                      world):
    request = make_request(app, session, signers=["alice@example.com", "x@partner.example"])
    sign_in(client, "alice@example.com")
    page = client.get(f"/signatures/{request.id}")
    document = client.get(f"/signatures/{request.id}/document.pdf")
    assert document.status_code == 200
    assert hashlib.sha256(document.data).hexdigest() == request.document_sha256
    assert client.post(f"/signatures/{request.id}/decline",
                       data={"decline-reason": "No"}).status_code == 400  # no CSRF token
    response = client.post(f"/signatures/{request.id}/decline", data={
        "csrf_token": csrf(page.data), "decline-reason": "Wrong address on it."})
    assert response.status_code == 303
    session.refresh(request)
    assert request.status is RequestStatus.DECLINED
    declined = events_for(session, "signature_request", str(request.id))[-1]
    assert declined.payload["reason"] == "Wrong address on it."
    assert declined.actor.startswith("portal:user:")
    after = client.get(f"/signatures/{request.id}")
    assert b"Declined" in after.data and b'name="consent"' not in after.data


def test_a_void_invoice_cannot_be_signed(app, session, world):
    from portal.models import InvoiceStatus

    voided = invoice(session, "INV-A1")
    voided.status = InvoiceStatus.VOID
    with pytest.raises(SigningError, match="INV-A1 is void"):
        make_request(app, session)


def test_a_second_submission_racing_the_first_loses_and_writes_nothing(app, session, world):
    from portal.models import Signer
    from portal.signing.actions import Visit, sign

    request = make_request(app, session, signers=["alice@example.com"])
    signer = request.signers[0]
    # Another process signed a moment ago; this one still holds the old state.
    session.execute(sa.update(Signer).where(Signer.id == signer.id)
                    .values(status=SignerStatus.SIGNED)
                    .execution_options(synchronize_session=False))
    assert signer.status is SignerStatus.ASKED
    with app.test_request_context("/"), pytest.raises(SigningError, match="already"):
        sign(session, signer, Visit("192.0.2.1", "x"), typed_name="Alice", drawn_png=None,
             context=context(app))
    assert session.scalar(sa.select(sa.func.count()).select_from(Signature)) == 0
    assert "signature.signed" not in kinds(session, request)
