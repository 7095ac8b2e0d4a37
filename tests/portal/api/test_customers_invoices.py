"""/api/v1 customers and invoices: find, read, list with paging, documents, create."""

from __future__ import annotations

import sqlalchemy as sa

from distribution.events import Event
from portal.models import Invoice, InvoiceStatus
from tests.factories import INVOICE_JSON_PAYABLE, invoice_json
from tests.portal.api.conftest import assert_error


def test_find_customers_by_email_phone_and_numbers(api, billing, session):
    alice, _ = billing
    alice.contacts[0].phone = "+32 470 12 34 56"
    session.flush()
    for query in ("email=c1@example.com", "phone=%2B32470123456", "customer_number=C1",
                  "invoice_number=INV-A2"):
        response = api.get(f"/customers?{query}")
        assert response.status_code == 200, (query, response.data)
        assert [c["number"] for c in response.get_json()["data"]] == ["C1"], query
    both = api.get("/customers?email=c1@example.com&invoice_number=INV-B1")
    assert both.get_json()["data"] == []  # every criterion must match
    assert api.get("/customers?email=nobody@example.com").get_json()["data"] == []
    assert_error(api.get("/customers"), 422, "missing_field")


def test_get_one_customer_and_unknown_is_404(api, billing):
    alice, _ = billing
    body = api.get(f"/customers/{alice.id}").get_json()
    assert body["number"] == "C1" and body["email"] == "c1@example.com"
    assert_error(api.get("/customers/987654"), 404, "not_found")


def test_reading_needs_the_read_scope(make_api, billing):
    writer = make_api(["payments:write"])
    assert_error(writer.get("/invoices"), 403, "missing_scope")


def test_list_invoices_with_filters_and_cursor_paging(api, billing):
    alice, _ = billing
    first = api.get(f"/invoices?customer_id={alice.id}&limit=2").get_json()
    assert [i["number"] for i in first["data"]] == ["CN-A1", "INV-A3"]
    assert first["next_cursor"]
    second = api.get(f"/invoices?customer_id={alice.id}&limit=2&cursor={first['next_cursor']}"
                     ).get_json()
    assert [i["number"] for i in second["data"]] == ["INV-A2", "INV-A1"]
    assert second["next_cursor"] is None
    credit_notes = api.get("/invoices?kind=credit_note").get_json()["data"]
    assert [i["number"] for i in credit_notes] == ["CN-A1"]
    partly = api.get("/invoices?status=partially_paid").get_json()["data"]
    assert [i["number"] for i in partly] == ["INV-A1"]
    assert partly[0]["open_balance"] == "100.00"
    issued = api.get("/invoices?customer_number=C1&issued_from=2026-10-01&issued_to=2026-10-31"
                     ).get_json()["data"]
    assert {i["number"] for i in issued} == {"INV-A2", "CN-A1"}
    assert_error(api.get("/invoices?status=lost"), 422, "invalid_value", "status")
    assert_error(api.get("/invoices?cursor=nonsense"), 422, "invalid_value", "cursor")
    assert_error(api.get("/invoices?issued_from=2026-13-01"), 422, "invalid_value",
                 "issued_from")
    assert_error(api.get("/invoices?limit=1000"), 422, "invalid_value", "limit")


def test_get_invoice_and_its_pdf_and_ubl(api, billing):
    body = api.get("/invoices/INV-A2").get_json()
    assert body["number"] == "INV-A2" and body["payable_amount"] == str(INVOICE_JSON_PAYABLE)
    assert body["documents"]["ubl"] == "/api/v1/invoices/INV-A2/ubl"
    ubl = api.get("/invoices/INV-A2/ubl")
    assert ubl.status_code == 200 and ubl.mimetype == "application/xml"
    assert b"<cbc:ID>INV-A2</cbc:ID>" in ubl.data
    pdf = api.get("/invoices/INV-A2/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert_error(api.get("/invoices/NOPE-1"), 404, "not_found", "number")
    assert_error(api.get("/invoices/NOPE-1/pdf"), 404, "not_found")


def test_create_invoice_from_the_import_format_issues_it_once(make_api, billing, session):
    api = make_api(["invoices:write", "read"], name="billing system")
    document = invoice_json("API-1", "C1")
    response = api.post("/invoices", document, key="bill-API-1")
    assert response.status_code == 201, response.data
    body = response.get_json()
    assert body["status"] == "issued" and body["payable_amount"] == "120.15"
    assert response.headers["Location"] == "/api/v1/invoices/API-1"
    invoice = session.scalars(sa.select(Invoice).where(Invoice.number == "API-1")).one()
    assert invoice.ubl_sha256 and invoice.status is InvoiceStatus.ISSUED
    assert invoice.source == "api"
    event = session.scalars(sa.select(Event).where(Event.kind == "invoice.imported",
                                                   Event.subject_key.endswith(":API-1"))).one()
    assert event.actor == "api:billing system"
    replay = api.post("/invoices", document, key="bill-API-1")
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.get_json() == body
    # Without the key, the same document is recognised by its number and content.
    again = api.post("/invoices", document)
    assert again.status_code == 200 and again.get_json()["id"] == body["id"]
    assert session.scalar(sa.select(sa.func.count()).select_from(Invoice).where(
        Invoice.number == "API-1")) == 1


def test_create_invoice_validation_names_the_field(make_api, billing):
    api = make_api(["invoices:write"])
    bad = invoice_json("API-2", "C1")
    bad["lines"][0]["quantity"] = "lots"
    error = assert_error(api.post("/invoices", bad), 422, "invalid_document")
    assert error["field"] == "lines[1].quantity" and "quantity" in error["message"]
    missing = invoice_json("API-3", "C1")
    del missing["currency"]
    assert_error(api.post("/invoices", missing), 422, "invalid_document", "currency")
    changed = invoice_json("INV-A2", "C1", buyer_reference="OTHER")
    error = assert_error(api.post("/invoices", changed), 422, "invalid_document", "number")
    assert "credit note" in error["message"]
    assert_error(make_api(["read"]).post("/invoices", invoice_json("API-4", "C1")), 403)


def test_update_billing_address_vat_and_peppol_ids_logged_with_who_and_why(make_api, billing,
                                                                            session):
    from distribution.events import events_for
    from distribution.recipients import Address

    alice, _ = billing
    crm = make_api(["customers:write", "read"], name="crm")
    response = crm.patch(f"/customers/{alice.id}", {
        "address": {"line1": "Kerkstraat 2", "city": "Brugge", "postal_code": "8000"},
        "vat_id": "BE0987654321", "peppol_id": "0208:0987654321",
        "reason": "moved, told us on the phone"})
    assert response.status_code == 200, response.data
    body = response.get_json()
    assert body["address"]["city"] == "Brugge" and body["peppol_id"] == "0208:0987654321"
    [event] = [e for e in events_for(session, "customer", str(alice.id))
               if e.kind == "customer.updated"]
    assert event.actor == "api:crm" and event.payload["reason"] == "moved, told us on the phone"
    assert event.payload["changes"]["city"] == {"from": "Gent", "to": "Brugge"}
    assert session.scalars(sa.select(Address).where(
        Address.value == "0208:0987654321")).one().verified_at is not None
    same = crm.patch(f"/customers/{alice.id}", {"vat_id": "BE0987654321", "reason": "again"})
    assert same.status_code == 200
    assert len([e for e in events_for(session, "customer", str(alice.id))
                if e.kind == "customer.updated"]) == 1  # nothing changed, nothing logged
    assert_error(crm.patch(f"/customers/{alice.id}", {"vat_id": "BE1"}), 422,
                 "missing_field", "reason")
    assert_error(crm.patch(f"/customers/{alice.id}", {"peppol_id": "nope", "reason": "x"}),
                 422, "invalid_value", "peppol_id")
    assert_error(crm.patch(f"/customers/{alice.id}", {"address": {"country_code": "be"},
                                                      "reason": "x"}),
                 422, "invalid_value", "address.country_code")
    assert_error(crm.patch("/customers/999999", {"reason": "x"}), 404)
    assert_error(make_api(["read"]).patch(f"/customers/{alice.id}", {"reason": "x"}), 403)
