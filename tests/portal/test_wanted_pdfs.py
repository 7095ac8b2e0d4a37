"""PDFs that waiting emails need are found ahead of the rendering backlog."""

from __future__ import annotations

import sqlalchemy as sa

from distribution.deliveries import attach_pdf
from distribution.documents import DatabaseStore
from distribution.runs import WaveOptions
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.models import Invoice
from portal.runs import RunSelection, create_document_run
from portal.tasks import wanted_invoice_ids
from tests.factories import invoice_json, make_customer, make_organisation


def test_only_invoices_whose_email_waits_for_a_pdf(session):
    org = make_organisation(session)
    for number in ("C1", "C2"):
        make_customer(session, org, number)
    import_documents(session, [
        document_from_mapping(invoice_json(f"INV-{n}", customer), Locator("t", str(n)),
                              source="json")
        for n, customer in ((1, "C1"), (2, "C2"), (3, "C2"))], file="t", store=DatabaseStore())
    invoices = {i.number: i for i in session.scalars(sa.select(Invoice))}
    assert wanted_invoice_ids(session) == []  # issued, but no email is waiting yet

    create_document_run(session, RunSelection(), WaveOptions(), name="t",
                        public_url="https://portal.example", created_by="test")
    assert wanted_invoice_ids(session) == sorted(i.id for i in invoices.values())

    rendered = invoices["INV-2"]
    rendered.pdf_sha256 = "a" * 64
    attach_pdf(session, rendered.ubl_sha256, rendered.pdf_sha256)
    session.flush()
    assert wanted_invoice_ids(session) == sorted([invoices["INV-1"].id, invoices["INV-3"].id])
