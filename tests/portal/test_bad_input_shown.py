"""Hostile text on its way out, property-based: imported text is escaped on every page
that shows it, CSV exports neutralise spreadsheet formulas, emails carry no injected
header, and search input is only ever a value (SQL), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import itertools
import json
from email import message_from_bytes, policy
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape

from distribution.channels.base import Attachment, OutgoingMessage
from distribution.channels.email_mime import AddressError, render_message
from distribution.channels.email_settings import SmtpSettings
from distribution.documents import DatabaseStore
from portal.audit_trail import safe_cell
from portal.imports.json_format import read_json
from portal.imports.problems import ImportRejected
from portal.imports.service import import_documents
from portal.models import Customer, Invoice, Role
from portal.ops.log_views import _csv_response
from tests.einvoice.test_ubl_bad_input import http_peer  # noqa: F401  (fixture)
from tests.factories import invoice_json, make_customer, make_organisation, make_user
from tests.portal.imports.test_bad_input import HOSTILE, hostile_text
from tests.portal.test_web import sign_in

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_numbers = itertools.count(1)


@pytest.fixture
def billed(app, session, client):
    """A seller, customer C1 signed in on ``client``, and a support agent on ``staff``."""
    org = make_organisation(session)
    customer = make_customer(session, org, "C1")
    make_user(session, email="alice@example.com", customer=customer)
    make_user(session, email="agent@example.com", role=Role.SUPPORT_AGENT)
    sign_in(client, "alice@example.com")
    staff = app.test_client()
    sign_in(staff, "agent@example.com")
    return SimpleNamespace(org=org, customer=customer, staff=staff)


def _import(session, document: dict) -> Invoice | None:
    try:
        documents = read_json(json.dumps([document]).encode("utf-8", "surrogatepass"), "f")
        import_documents(session, documents, file="f", store=DatabaseStore())
    except ImportRejected:
        return None
    return session.scalars(sa.select(Invoice).where(Invoice.number == document["number"])).one()


def _assert_escaped(page: bytes, value: str | None) -> None:
    text = page.decode()
    if value and any(c in value for c in "<>&\"'"):
        assert value not in text or value == str(escape(value))
    if value and value.strip():
        assert str(escape(value)) in text


@given(item=hostile_text, description=hostile_text, reference=hostile_text)
def test_imported_text_is_escaped_on_the_customers_and_the_staff_pages(
        session, client, billed, item, description, reference):
    number = f"INV-X{next(_numbers)}"
    document = invoice_json(number, "C1", buyer_reference=reference)
    document["lines"][0].update(item_name=item, description=description)
    savepoint = session.begin_nested()
    try:
        invoice = _import(session, document)
        if invoice is None:
            return
        line = invoice.lines[0]
        page = client.get(f"/invoices/{number}")
        assert page.status_code == 200
        _assert_escaped(page.data, line.item_name)
        _assert_escaped(page.data, line.description)
        listing = client.get("/invoices")
        assert listing.status_code == 200
        _assert_escaped(listing.data, invoice.buyer_reference)
        trail = billed.staff.get(f"/ops/invoices/{invoice.id}/trail")
        assert trail.status_code == 200 and b"<script>alert" not in trail.data
    finally:
        savepoint.rollback()
        session.expire_all()


@pytest.mark.parametrize("name", [h for h in HOSTILE if "<" in h or '"' in h])
def test_a_hostile_customer_name_is_escaped_for_staff(session, billed, name):
    customer = make_customer(session, billed.org, "C-H", name=name)
    page = billed.staff.get(f"/ops/customers/{customer.id}")
    assert page.status_code == 200
    assert name.encode() not in page.data and str(escape(name)).encode() in page.data


@given(st.text(max_size=40))
def test_safe_cell_never_starts_a_formula(text):
    cell = safe_cell(text)
    assert not cell.startswith(FORMULA_STARTS)
    assert cell == text or cell == "'" + text


@given(name=hostile_text, address=hostile_text, error=hostile_text)
def test_the_delivery_log_csv_neutralises_formulas(name, address, error):
    from datetime import UTC, datetime

    from distribution.channels.base import ChannelName
    from distribution.deliveries import DeliveryState

    row = SimpleNamespace(id=1, subject_key="invoice:1:INV-1", message_type="invoice",
                          recipient_key="customer:1", name=name, channel=ChannelName.EMAIL,
                          address=address, state=DeliveryState.FAILED, attempts=1,
                          updated_at=datetime(2026, 11, 23, tzinfo=UTC), last_error=error)
    body = _csv_response([row], "delivery-log.csv").get_data(as_text=True)
    cells = list(csv.reader(io.StringIO(body, newline="")))[1]
    assert not any(cell.startswith(FORMULA_STARTS) for cell in cells)
    assert [cells[4], cells[6], cells[10]] == [safe_cell(name), safe_cell(address),
                                               safe_cell(error)]


@pytest.mark.parametrize("number", ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1",
                                    "-2+3", "@SUM(A1)"])
def test_the_audit_trail_csv_neutralises_formulas(session, billed, number):
    invoice = _import(session, invoice_json(number, "C1", note="=1+1"))
    response = billed.staff.get(f"/ops/invoices/{invoice.id}/trail?format=csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))
    assert len(rows) > 1
    assert not any(cell.startswith(FORMULA_STARTS) for row in rows for cell in row)


SMTP = SmtpSettings(host="127.0.0.1", port=25, from_address="billing@herald.test",
                    from_name="Herald\r\nBcc: evil@example.com",
                    message_id_domain="herald.test")


@given(name=hostile_text, subject=hostile_text, language=hostile_text, filename=hostile_text,
       local=st.sampled_from(["alice", "a.b+c", "x\r\nBcc: evil", "<a>", "\"q\""]))
def test_no_header_can_be_injected_into_an_email(name, subject, language, filename, local):
    message = OutgoingMessage(
        delivery_id=7, idempotency_key="delivery-7", message_type="invoice",
        address=f"{local}@example.com", recipient_name=name, language=language,
        subject=subject, text="Your invoice", html="<p>Your invoice</p>",
        attachments=(Attachment(filename=filename, media_type="application/pdf",
                                content=b"%PDF-1.7"),))
    try:
        raw = render_message(message, SMTP)
    except AddressError:
        assert "\r" in local or "<" in local or "\"" in local
        return
    mail = message_from_bytes(raw, policy=policy.default)
    names = {header.lower() for header in mail}
    assert names <= {"from", "to", "subject", "date", "message-id", "auto-submitted",
                     "x-herald-delivery", "content-language", "mime-version", "content-type",
                     "content-transfer-encoding"}
    (to,) = mail["To"].addresses  # one recipient, whatever the name and address hold
    assert to.domain == "example.com" and to.username.strip('"') == local.strip('"')
    assert [a.addr_spec for a in mail["From"].addresses] == ["billing@herald.test"]
    assert "\n" not in str(mail["Subject"]) and "bcc" not in names and "cc" not in names


@given(st.one_of(st.sampled_from([*HOSTILE, "\x00", "C1\x00"]), st.text(max_size=60)))
def test_staff_search_treats_any_input_as_a_value(billed, query):
    response = billed.staff.get("/ops/customers", query_string={"q": query})
    assert response.status_code in (200, 302)


@pytest.mark.parametrize("field", ["customer", "email", "invoice"])
@pytest.mark.parametrize("value", ["\x00", "'; DROP TABLE deliveries; --", "%_\\"])
def test_the_delivery_log_search_treats_any_input_as_a_value(billed, field, value):
    response = billed.staff.get("/ops/log", query_string={field: value})
    assert response.status_code == 200


@pytest.mark.parametrize("number", ["'; DROP TABLE customers; --", "1' OR '1'='1", "%", "_",
                                    "C1\\", "C1%"])
def test_a_customer_numbered_like_sql_is_found_exactly(session, billed, number):
    customer = make_customer(session, billed.org, number)
    response = billed.staff.get("/ops/customers", query_string={"q": number})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/ops/customers/{customer.id}")
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 2


@pytest.mark.parametrize("item", [
    "<script>alert(1)</script>", '<img src="{url}/img">', "<style>@import '{url}/css'</style>",
    "&lt;b&gt; & {{{{ 7*7 }}}}",
])
def test_hostile_text_in_the_pdf_is_only_text(session, billed, http_peer,  # noqa: F811
                                               item):
    import subprocess

    from portal.rendering import render_invoice_pdf
    from tests.einvoice.test_ubl_bad_input import _CountingHandler

    item = item.format(url=http_peer)
    document = invoice_json("INV-PDF", "C1")
    document["lines"][0]["item_name"] = item
    invoice = _import(session, document)
    before = len(_CountingHandler.requests)
    store = DatabaseStore()
    pdf = store.get(session, render_invoice_pdf(session, invoice, store,
                                                public_url="https://portal.example"))
    text = subprocess.run(["pdftotext", "-raw", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode()
    assert item.split("{")[0][:12] in " ".join(text.split())  # shown as written
    assert len(_CountingHandler.requests) == before  # and nothing fetched
