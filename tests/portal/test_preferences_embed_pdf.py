"""A customer chooses on "How we reach you" whether their e-invoice carries its PDF inside."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

import einvoice
from distribution.channels.base import ChannelName
from distribution.preferences import ensure_message_types, set_preference
from portal.db import get_database
from portal.models import Customer
from portal.recipients_sync import recipient_key, sync_customer
from tests.factories import make_user
from tests.portal import preferences_helpers as helpers
from tests.portal import test_issuing
from tests.portal.preferences_helpers import csrf_token, events_of, sign_in

# The end-to-end app: its own database, SMTP peer and Peppol outbox folder on loopback.
herald = test_issuing.herald
smtp_peer = test_issuing.smtp_peer
LABEL = b"Put the PDF of each invoice inside the e-invoice file"


@pytest.fixture
def customers(session):
    return helpers.two_customers(session)


def _checkbox(page: bytes) -> bytes:
    start = page.index(b'id="embed_pdf"')
    return page[page.rindex(b"<input", 0, start):page.index(b">", start)]


def test_turning_the_pdf_on_and_off(client, session, customers):
    alice, bob = customers
    sign_in(client, "alice@example.com")
    page = client.get("/preferences").data
    assert LABEL in page and b"checked" not in _checkbox(page)
    token = csrf_token(client, "/preferences")

    on = client.post("/preferences/einvoice/pdf", data={"csrf_token": token, "embed_pdf": "y"})
    assert on.status_code == 302 and on.location.endswith("#einvoice")
    session.expire_all()
    assert alice.embed_pdf_in_ubl is True and bob.embed_pdf_in_ubl is False
    page = client.get("/preferences").data
    assert b"checked" in _checkbox(page)
    assert b"carries the PDF inside" in page

    # saving the same choice again records nothing
    client.post("/preferences/einvoice/pdf", data={"csrf_token": token, "embed_pdf": "y"})
    off = client.post("/preferences/einvoice/pdf", data={"csrf_token": token})
    assert off.status_code == 302
    session.expire_all()
    assert alice.embed_pdf_in_ubl is False
    changes = events_of(session, "embed_pdf_in_ubl.changed", recipient_key(alice))
    assert [e.payload for e in changes] == [{"old": False, "new": True},
                                            {"old": True, "new": False}]
    assert all(e.actor.startswith("portal:user:") for e in changes)


def test_the_form_needs_its_csrf_token(client, session, customers):
    alice, _ = customers
    sign_in(client, "alice@example.com")
    refused = client.post("/preferences/einvoice/pdf", data={"embed_pdf": "y"})
    assert refused.status_code in (400, 422)
    session.expire_all()
    assert alice.embed_pdf_in_ubl is False


def _header_token(client, url: str) -> str:
    page = client.get(url, follow_redirects=True).data
    return re.search(rb'"X-CSRFToken": "([^"]+)"', page).group(1).decode()


def test_another_customer_cannot_change_it(app, client, session, customers):
    alice, bob = customers
    alice.embed_pdf_in_ubl = True
    session.commit()
    # Bob's form changes Bob's record only, whatever customer it names.
    sign_in(client, "bob@example.com")
    token = csrf_token(client, "/preferences")
    response = client.post("/preferences/einvoice/pdf",
                           data={"csrf_token": token, "customer_id": str(alice.id)})
    assert response.status_code == 302
    session.expire_all()
    assert alice.embed_pdf_in_ubl is True and bob.embed_pdf_in_ubl is False
    client.post("/preferences/einvoice/pdf", data={"csrf_token": token, "embed_pdf": "y",
                                                   "customer_id": str(alice.id)})
    session.expire_all()
    assert bob.embed_pdf_in_ubl is True and alice.embed_pdf_in_ubl is True
    assert events_of(session, "embed_pdf_in_ubl.changed", recipient_key(alice)) == []

    # Signed out: sent to sign in. Staff have no e-invoice preference of their own.
    anonymous = app.test_client()
    response = anonymous.post("/preferences/einvoice/pdf", data={
        "csrf_token": _header_token(anonymous, "/sign-in"), "embed_pdf": ""})
    assert response.status_code == 302 and "/sign-in" in response.location
    staff = app.test_client()
    sign_in(staff, "ops@example.com")
    response = staff.post("/preferences/einvoice/pdf", data={
        "csrf_token": _header_token(staff, "/sign-in"), "embed_pdf": ""})
    assert response.status_code == 403
    session.expire_all()
    assert alice.embed_pdf_in_ubl is True and bob.embed_pdf_in_ubl is True


@test_issuing.needs_rules
def test_the_next_peppol_e_invoice_carries_the_pdf(herald, tmp_path):
    database = get_database(herald)
    with database.session_scope() as session:
        ensure_message_types(session)
        acme = session.scalars(sa.select(Customer).where(Customer.name == "Acme BV")).one()
        make_user(session, email="acme@example.com", customer=acme)
        set_preference(session, sync_customer(session, acme, actor="test"), "*",
                       [ChannelName.PEPPOL])
    client = herald.test_client()
    sign_in(client, "acme@example.com")
    response = client.post("/preferences/einvoice/pdf", data={
        "csrf_token": csrf_token(client, "/preferences"), "embed_pdf": "y"})
    assert response.status_code == 302

    created = herald.test_cli_runner().invoke(args=[
        "runs", "create", "--rate", "6000", "--window", "0-24", "--weekends", "--start",
        "--segment", "business"])
    assert created.exit_code == 0, created.output
    test_issuing._dispatch(herald)
    (envelope,) = [json.loads(p.read_text()) for p in (tmp_path / "outbox").glob("*.json")]
    sent = (tmp_path / "outbox" / envelope["document"]).read_bytes()
    ubl, pdf, as_sent = test_issuing._stored(herald, "INV-2")
    assert sent == as_sent != ubl
    assert test_issuing._embedded_pdf(sent) == pdf
    assert einvoice.read_ubl(sent).totals == einvoice.read_ubl(ubl).totals
