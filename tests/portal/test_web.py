"""Signing in and seeing one's own invoices, and nobody else's."""

from __future__ import annotations

import re

import pytest

from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.models import Role
from tests.factories import invoice_json, make_customer, make_organisation, make_user

PASSWORD = "correct horse battery"


@pytest.fixture
def two_customers(session):
    org = make_organisation(session)
    alice = make_customer(session, org, "C1", name="Alice")
    bob = make_customer(session, org, "C2", name="Bob")
    documents = [
        document_from_mapping(invoice_json("INV-A1", "C1"), Locator("t", "1"), source="json"),
        document_from_mapping(invoice_json("INV-B1", "C2"), Locator("t", "2"), source="json"),
    ]
    import_documents(session, documents, file="t")
    make_user(session, email="alice@example.com", customer=alice)
    make_user(session, email="bob@example.com", customer=bob)
    make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR)
    return alice, bob


def sign_in(client, email, password=PASSWORD):
    page = client.get("/sign-in")
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1)
    return client.post("/sign-in", data={"csrf_token": token.decode(), "email": email,
                                         "password": password})


def test_sign_in_page_has_a_csrf_protected_form(client):
    page = client.get("/sign-in")
    assert page.status_code == 200
    assert b"<h1>Sign in</h1>" in page.data
    assert b'name="csrf_token"' in page.data


def test_post_without_csrf_token_is_refused(client, two_customers):
    response = client.post("/sign-in", data={"email": "alice@example.com",
                                             "password": PASSWORD})
    assert response.status_code == 400
    assert b"This form has expired" in response.data


def test_wrong_password_gives_one_message_for_all_failures(client, two_customers):
    wrong = sign_in(client, "alice@example.com", "wrong password!")
    unknown = sign_in(client, "nobody@example.com", "wrong password!")
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert b"That email address and password do not match" in response.data


def test_customer_sees_own_invoices_only(client, two_customers):
    response = sign_in(client, "Alice@Example.com")
    assert response.status_code == 302 and response.location.endswith("/invoices")
    listing = client.get("/invoices")
    assert b"INV-A1" in listing.data and b"INV-B1" not in listing.data
    detail = client.get("/invoices/INV-A1")
    assert detail.status_code == 200
    assert "€120.15".encode() in detail.data  # the hand-worked total (see factories)
    assert "€8.68".encode() in detail.data and "€3.97".encode() in detail.data  # VAT per rate
    assert client.get("/invoices/INV-B1").status_code == 404


def test_htmx_request_gets_the_table_alone(client, two_customers):
    sign_in(client, "alice@example.com")
    partial = client.get("/invoices?q=A1", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert b"<html" not in partial.data and b"INV-A1" in partial.data
    empty = client.get("/invoices?q=nothing-like-this", headers={"HX-Request": "true"})
    assert b"No invoices match" in empty.data


def test_pages_need_sign_in(client):
    response = client.get("/invoices")
    assert response.status_code == 302 and "/sign-in" in response.location


def test_staff_land_on_the_overview_and_customers_cannot_see_it(client, two_customers):
    response = sign_in(client, "ops@example.com")
    assert response.location.endswith("/ops")
    assert b"2 customers." in client.get("/ops").data
    client.post("/sign-out", data={"csrf_token": _token(client)})
    sign_in(client, "bob@example.com")
    assert client.get("/ops").status_code == 403


def test_sign_out_ends_the_session(client, two_customers):
    sign_in(client, "alice@example.com")
    response = client.post("/sign-out", data={"csrf_token": _token(client)})
    assert response.status_code == 302
    assert client.get("/invoices").status_code == 302


def test_next_parameter_cannot_send_users_elsewhere(client, two_customers):
    page = client.get("/sign-in?next=//evil.example/")
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1)
    response = client.post("/sign-in?next=//evil.example/",
                           data={"csrf_token": token.decode(), "email": "alice@example.com",
                                 "password": PASSWORD})
    assert response.location.endswith("/invoices")


def test_healthz_reports_database_and_worker(client):
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["worker"]["status"] in {"never seen", "ok", "stale"}


def _token(client) -> str:
    page = client.get("/invoices")
    return re.search(rb'"X-CSRFToken": "([^"]+)"', page.data).group(1).decode()
