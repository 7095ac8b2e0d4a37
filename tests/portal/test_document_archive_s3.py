"""The portal on an S3 archive (moto's S3 server on loopback): issue, download,
and ``herald audit verify`` finding an object changed behind Herald's back."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from distribution.documents import DocumentIntegrityError, make_store
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.models import Customer, Invoice
from tests.factories import invoice_json, make_customer, make_organisation, make_user
from tests.peers.s3 import s3_bucket, s3_peer  # noqa: F401  (fixtures)
from tests.portal.test_web import sign_in


@pytest.fixture
def archive(app, monkeypatch, s3_peer, s3_bucket):  # noqa: F811
    """The app's DOCUMENT_STORE pointed at a new bucket for this test."""
    settings = app.config["HERALD"]
    url = s3_peer.store_url(s3_bucket, prefix="herald")
    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(settings, document_store=url))
    return make_store(url, settings.instance_path)


@pytest.fixture
def alice(session, client, archive):
    org = make_organisation(session)
    customer = make_customer(session, org, "C-000123")
    make_customer(session, org, "C-000999", name="Bob")
    documents = [document_from_mapping(invoice_json(number, customer_number),
                                       Locator("t", number), source="json")
                 for number, customer_number in (("INV-2026-000045", "C-000123"),
                                                 ("INV-2026-000046", "C-000999"))]
    import_documents(session, documents, file="t", store=archive)
    make_user(session, email="alice@example.com", customer=session.get(Customer, customer.id))
    sign_in(client, "alice@example.com")
    return session.scalars(sa.select(Invoice).where(Invoice.number == "INV-2026-000045")).one()


def test_issued_documents_are_filed_and_downloaded_from_s3(client, session, alice, archive,
                                                          s3_peer, s3_bucket):  # noqa: F811
    assert s3_peer.keys(s3_bucket) == ["herald/2026/C-000123/INV-2026-000045.xml",
                                       "herald/2026/C-000999/INV-2026-000046.xml"]
    ubl = client.get("/invoices/INV-2026-000045/ubl")
    assert ubl.status_code == 200 and ubl.data == archive.get(session, alice.ubl_sha256)
    assert b"INV-2026-000045" in ubl.data

    pdf = client.get("/invoices/INV-2026-000045/pdf")  # rendered on demand, filed beside it
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    assert "herald/2026/C-000123/INV-2026-000045.pdf" in s3_peer.keys(s3_bucket)
    stored = s3_peer.client.get_object(Bucket=s3_bucket,
                                       Key="herald/2026/C-000123/INV-2026-000045.pdf")
    assert stored["Body"].read() == pdf.data
    assert client.get("/invoices/INV-2026-000046/ubl").status_code == 404  # Bob's


def test_a_tampered_object_is_never_served(client, alice, s3_peer, s3_bucket,  # noqa: F811
                                           caplog):
    s3_peer.client.put_object(Bucket=s3_bucket, Key="herald/2026/C-000123/INV-2026-000045.xml",
                              Body=b"<Invoice>pay to another account</Invoice>")
    response = client.get("/invoices/INV-2026-000045/ubl")
    assert response.status_code == 500 and b"another account" not in response.data
    errors = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert any(isinstance(e, DocumentIntegrityError) and "does not match its hash" in str(e)
               for e in errors)


def test_audit_verify_reports_a_tampered_or_missing_object(
        runner, alice, s3_peer, s3_bucket):  # noqa: F811
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "stored documents match their hashes" in result.output

    s3_peer.client.put_object(Bucket=s3_bucket, Key="herald/2026/C-000123/INV-2026-000045.xml",
                              Body=b"<Invoice>changed</Invoice>")
    s3_peer.client.delete_object(Bucket=s3_bucket,
                                 Key="herald/2026/C-000999/INV-2026-000046.xml")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"document {alice.ubl_sha256}" in result.output
    assert "2026/C-000123/INV-2026-000045.xml" in result.output and "altered" in result.output
    assert "no object s3://" in result.output and "INV-2026-000046.xml" in result.output
