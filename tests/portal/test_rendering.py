"""The PDF of an issued invoice: rendered once, stored, queued in batches, downloadable."""

from __future__ import annotations

import re
import subprocess
from datetime import date, timedelta
from decimal import Decimal
from io import BytesIO

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

import einvoice
from distribution.documents import DatabaseStore
from distribution.events import events_for
from portal.db import get_database
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import ImportRejected, Locator
from portal.imports.service import import_documents
from portal.models import Invoice, InvoiceStatus
from portal.queue import get_huey
from portal.rendering import (
    NotIssued,
    branding_for,
    pdf_language,
    render_invoice_pdf,
    review_url,
    status_label,
)
from portal.tasks import batches, enqueue_pdf_rendering, render_batch, unrendered_invoice_ids
from tests.factories import invoice_json, make_customer, make_organisation, make_user
from tests.portal.test_web import sign_in

PUBLIC_URL = "https://portal.example"


def _import(session, *mappings) -> list[Invoice]:
    documents = [document_from_mapping(m, Locator("t", str(i)), source="json")
                 for i, m in enumerate(mappings)]
    try:
        import_documents(session, documents, file="t", store=DatabaseStore())
    except ImportRejected as rejected:  # show why, not just that
        raise AssertionError([str(p) for p in rejected.problems]) from rejected
    numbers = [m["number"] for m in mappings]
    return list(session.scalars(sa.select(Invoice).where(Invoice.number.in_(numbers))
                                .order_by(Invoice.number)))


@pytest.fixture
def org(session):
    org = make_organisation(session, trading_name="Testing", primary_colour="#123456")
    make_customer(session, org, "C1", language="nl")
    make_customer(session, org, "C2", name="Bob")
    return org


@pytest.fixture
def invoice(session, org) -> Invoice:
    return _import(session, invoice_json("INV-1", "C1"))[0]


def _pdf_text(data: bytes) -> str:
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True,
                          check=True).stdout.decode()


def test_renders_stores_and_records_the_pdf_once(session, org, invoice, monkeypatch):
    store = DatabaseStore()
    digest = render_invoice_pdf(session, invoice, store, public_url=PUBLIC_URL)
    assert invoice.pdf_sha256 == digest
    pdf = store.get(session, digest)
    text = _pdf_text(pdf)
    assert "INV-1" in text and "120,15" in text  # Dutch: the customer's language
    assert "Factuur" in text and f"portal.example/pay/{invoice.id}-" in text  # stable address
    # PDF/A-3b with the stored UBL inside, byte for byte
    attachments = PdfReader(BytesIO(pdf)).attachments
    assert attachments == {"INV-1.xml": [store.get(session, invoice.ubl_sha256)]}
    events = [e for e in events_for(session, "invoice", f"{org.id}:INV-1")
              if e.kind == "invoice.pdf_rendered"]
    assert [e.payload["pdf_sha256"] for e in events] == [digest]

    # The frozen PDF is what was sent: never rendered again.
    def fail(*args, **kwargs):
        raise AssertionError("rendered twice")

    monkeypatch.setattr(einvoice, "render_pdf", fail)
    assert render_invoice_pdf(session, invoice, store, public_url=PUBLIC_URL) == digest


def test_messages_waiting_for_the_pdf_learn_it(session, org, invoice, monkeypatch):
    attached = []
    monkeypatch.setattr("portal.rendering.attach_pdf",
                        lambda session, ubl, pdf: attached.append((ubl, pdf)) or 1)
    digest = render_invoice_pdf(session, invoice, DatabaseStore(), public_url=PUBLIC_URL)
    assert attached == [(invoice.ubl_sha256, digest)]


def test_a_draft_has_no_pdf(session, org):
    draft = _import(session, invoice_json("INV-D", "C1", status="draft"))[0]
    with pytest.raises(NotIssued):
        render_invoice_pdf(session, draft, DatabaseStore(), public_url=PUBLIC_URL)


def test_a_concurrent_render_keeps_the_first_pdf(session, org, invoice):
    # Another worker set the hash after this one loaded the invoice.
    session.execute(sa.update(Invoice).where(Invoice.id == invoice.id)
                    .values(pdf_sha256="a" * 64).execution_options(synchronize_session=False))
    assert invoice.pdf_sha256 is None  # this worker's stale view
    digest = render_invoice_pdf(session, invoice, DatabaseStore(), public_url=PUBLIC_URL)
    assert digest == "a" * 64 and invoice.pdf_sha256 == "a" * 64
    kinds = [e.kind for e in events_for(session, "invoice", f"{org.id}:INV-1")]
    assert "invoice.pdf_rendered" not in kinds


def test_status_label(session, org, invoice):
    due = invoice.due_date
    assert status_label(session, invoice, today=due) is None
    assert status_label(session, invoice, today=due + timedelta(days=1)) == "overdue"
    invoice.status = InvoiceStatus.PARTIALLY_PAID
    assert status_label(session, invoice, today=due) == "partially_paid"
    invoice.status = InvoiceStatus.PAID
    assert status_label(session, invoice, today=due + timedelta(days=9)) == "paid"
    invoice.status = InvoiceStatus.ISSUED
    credit = invoice_json("CN-1", "C1", type="credit_note", due_date=None,
                          payment_terms="Deducted from your next invoice",
                          preceding_invoice={"number": "INV-1", "issue_date": "2026-10-01"})
    credit_note = _import(session, credit)[0]
    assert status_label(session, credit_note, today=due) is None
    assert status_label(session, invoice, today=due + timedelta(days=1)) == "cancelled"


def test_branding_language_and_link(session, org, invoice):
    branding = branding_for(org)
    assert branding.seller_name == "Testing" and branding.primary_colour == "#123456"
    org.accent_colour = "red"  # not hex: defaults stand in rather than failing the invoice
    assert branding_for(org).accent_colour == einvoice.Branding(seller_name="x").accent_colour
    assert pdf_language("nl-BE") == "nl" + "-BE" and pdf_language("fr") == "en"
    assert pdf_language(None) == "en"
    invoice.number = "2026/10 A"
    # The PDF's link is the invoice's stable address (portal.pay.links), not a token.
    assert re.fullmatch(re.escape(PUBLIC_URL) + rf"/pay/{invoice.id}-[0-9a-f]{{16}}",
                        review_url(PUBLIC_URL + "/", invoice))


def test_batches_and_unrendered_ids(session, org):
    assert batches(list(range(250))) == [list(range(100)), list(range(100, 200)),
                                         list(range(200, 250))]
    assert batches([]) == []
    first, second = _import(session, invoice_json("INV-1", "C1"), invoice_json("INV-2", "C2"))
    _import(session, invoice_json("INV-3", "C1", status="draft"))
    assert unrendered_invoice_ids(session, ["INV-2", "INV-3", "nope"]) == [second.id]
    assert set(unrendered_invoice_ids(session)) >= {first.id, second.id}


def test_a_batch_out_of_time_hands_the_rest_on(app, session, org):
    invoices = _import(session, *(invoice_json(f"INV-{n}", "C1") for n in range(1, 4)))
    ids = [invoice.id for invoice in invoices]
    make_session = get_database(app).sessionmaker
    result = render_batch(make_session, DatabaseStore(), PUBLIC_URL, ids, budget_seconds=0)
    assert (result.rendered, result.remaining) == (1, ids[1:])  # always at least one
    result = render_batch(make_session, DatabaseStore(), PUBLIC_URL, [ids[0], 999_999])
    assert (result.rendered, result.skipped, result.remaining) == (0, 2, [])


@pytest.fixture
def immediate_queue(app):
    huey = get_huey(app)
    huey.immediate = True  # runs tasks in this thread, with in-memory storage
    yield huey
    huey.immediate = False


def test_the_task_renders_a_batch_and_running_it_twice_is_harmless(
        app, session, org, immediate_queue):
    invoices = _import(session, invoice_json("INV-1", "C1"), invoice_json("INV-2", "C2"))
    ids = [invoice.id for invoice in invoices]
    assert enqueue_pdf_rendering(app, ids + ids) == 1  # duplicates dropped, one batch
    session.expire_all()
    hashes = [session.get(Invoice, i).pdf_sha256 for i in ids]
    assert all(hashes)
    enqueue_pdf_rendering(app, ids)
    session.expire_all()
    assert [session.get(Invoice, i).pdf_sha256 for i in ids] == hashes
    rendered = session.scalar(sa.select(sa.func.count()).select_from(
        sa.select(Invoice.id).where(Invoice.id.in_(ids), Invoice.pdf_sha256.is_not(None))
        .subquery()))
    assert rendered == 2
    for invoice in invoices:
        kinds = [e.kind for e in events_for(session, "invoice", f"{org.id}:{invoice.number}")]
        assert kinds.count("invoice.pdf_rendered") == 1


def test_the_import_command_enqueues_rendering_after_commit(
        app, session, org, runner, immediate_queue, tmp_path):
    import json

    path = tmp_path / "invoices.json"
    path.write_text(json.dumps([invoice_json("INV-7", "C1")]))
    result = runner.invoke(args=["invoices", "import", str(path)])
    assert result.exit_code == 0, result.output
    invoice = session.scalars(sa.select(Invoice).where(Invoice.number == "INV-7")).one()
    assert invoice.ubl_sha256 and invoice.pdf_sha256


# Downloads in the portal


@pytest.fixture
def signed_in(client, session, org):
    invoices = _import(session, invoice_json("INV-A1", "C1"), invoice_json("INV-B1", "C2"))
    alice = session.scalars(sa.select(Invoice.customer_id).where(Invoice.number == "INV-A1"))
    from portal.models import Customer

    make_user(session, email="alice@example.com", customer=session.get(Customer, alice.one()))
    sign_in(client, "alice@example.com")
    return invoices


def test_the_invoice_page_links_its_downloads(client, signed_in):
    page = client.get("/invoices/INV-A1")
    assert b'href="/invoices/INV-A1/pdf"' in page.data
    assert b'href="/invoices/INV-A1/ubl"' in page.data


def test_ubl_download_is_the_stored_document(client, session, signed_in):
    invoice = signed_in[0]
    response = client.get("/invoices/INV-A1/ubl")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert response.headers["Content-Disposition"] == "attachment; filename=INV-A1.xml"
    assert response.data == DatabaseStore().get(session, invoice.ubl_sha256)
    assert "private" in response.headers["Cache-Control"]


def test_pdf_download_renders_on_demand_then_serves_the_same_bytes(client, session, signed_in):
    invoice = signed_in[0]
    assert invoice.pdf_sha256 is None
    first = client.get("/invoices/INV-A1/pdf")
    assert first.status_code == 200 and first.mimetype == "application/pdf"
    assert first.headers["Content-Disposition"] == "attachment; filename=INV-A1.pdf"
    assert first.data.startswith(b"%PDF-")
    session.expire_all()
    stored = session.get(Invoice, invoice.id).pdf_sha256
    assert stored and DatabaseStore().get(session, stored) == first.data
    assert client.get("/invoices/INV-A1/pdf").data == first.data


def test_another_customers_documents_are_not_found(client, signed_in):
    for suffix in ("pdf", "ubl"):
        assert client.get(f"/invoices/INV-B1/{suffix}").status_code == 404
        assert client.get(f"/invoices/NOPE/{suffix}").status_code == 404


def test_downloads_need_a_sign_in(app, session, org):
    _import(session, invoice_json("INV-A1", "C1"))
    response = app.test_client().get("/invoices/INV-A1/pdf")
    assert response.status_code in (302, 401)


def test_a_number_with_a_slash_downloads_too(client, session, signed_in):
    _import(session, invoice_json("2026/10/7", "C1"))
    response = client.get("/invoices/2026/10/7/ubl")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=2026_10_7.xml"
    assert client.get("/invoices/2026/10/7").status_code == 200


def test_amount_in_pdf_matches_the_invoice(session, org, invoice):
    digest = render_invoice_pdf(session, invoice, DatabaseStore(), public_url=PUBLIC_URL)
    assert invoice.payable_amount == Decimal("120.15")
    assert "120,15" in _pdf_text(DatabaseStore().get(session, digest))
    assert invoice.issue_date == date(2026, 10, 1)
