"""Message templates in the ops console: list, edit with preview, history and restore, roles."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from distribution import template_store
from distribution.documents import DatabaseStore
from distribution.events import events_for
from distribution.template_store import TemplateKey, TemplateVersion, active_sources, history
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.models import Role
from tests.factories import invoice_json, make_customer, make_organisation, make_user
from tests.portal.test_web import sign_in

EDIT = "/ops/templates/invoice/email_subject/en"
SUBJECT = TemplateKey("invoice", "email_subject", "en")


@pytest.fixture(autouse=True)
def _fresh_cache():
    template_store.forget_cached()
    yield
    template_store.forget_cached()


@pytest.fixture
def staff(session):
    """An issued invoice of Alice's; a user of each role that matters, and Alice herself."""
    org = make_organisation(session)
    alice = make_customer(session, org, "C1", name="Alice Martens")
    import_documents(session, [document_from_mapping(invoice_json("INV-77", "C1"),
                                                     Locator("t", "1"), source="json")],
                     file="t", store=DatabaseStore())
    make_user(session, email="alice@example.com", customer=alice)
    make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR)
    make_user(session, email="agent@example.com", role=Role.SUPPORT_AGENT)
    make_user(session, email="auditor@example.com", role=Role.AUDITOR)


def _csrf(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return re.search(rb'"X-CSRFToken": "([^"]+)"', page.data).group(1).decode()


def _save(client, source: str, *, note: str = "", path: str = EDIT):
    token = _csrf(client, path)
    return client.post(path, data={"csrf_token": token, "source": source, "note": note,
                                   "save": "Save as new version"})


def test_list_shows_every_type_part_and_language_with_the_version_in_use(client, session,
                                                                        staff):
    sign_in(client, "ops@example.com")
    assert _save(client, "Bill {{ number }}").status_code == 302

    page = client.get("/ops/templates").get_data(as_text=True)
    assert "<h1>Message templates</h1>" in page
    for heading in ("Invoice", "Credit note", "Final notice", "Payment receipt"):
        assert f">{heading}</h2>" in page
    assert "Own text, version 1" in page
    assert page.count(">Built-in<") + page.count(">Built-in\n") >= 1
    assert f'href="{EDIT}"' in page


def test_operator_saves_a_version_that_is_what_sending_uses(client, session, staff):
    sign_in(client, "ops@example.com")

    response = _save(client, "{{ seller_name }}: bill {{ number }}", note="shorter subject")

    assert response.status_code == 302
    (version,) = history(session, SUBJECT)
    assert (version.version, version.note) == (1, "shorter subject")
    assert version.created_by.startswith("staff:") and "ops@example.com" in version.created_by
    (event,) = events_for(session, "message_template", "invoice:email_subject:en")
    assert (event.kind, event.actor) == ("template.saved", version.created_by)
    page = client.get(EDIT).get_data(as_text=True)
    assert "Version 1 saved" in page and "In use: version 1" in page
    assert "shorter subject" in page


def test_unknown_placeholder_is_refused_and_nothing_saved(client, session, staff):
    sign_in(client, "ops@example.com")

    response = _save(client, "Invoice {{ number }} for {{ iban }}")

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "unknown placeholder {{ iban }}" in page
    assert "amount, customer_name, due_date, link, number, seller_name" in page
    assert 'aria-invalid="true"' in page
    assert history(session, SUBJECT) == []


def test_a_typed_url_is_refused(client, session, staff):
    sign_in(client, "ops@example.com")
    path = "/ops/templates/invoice/email_text/en"

    response = _save(client, "Pay now at https://pay.example.net/{{ number }}", path=path)

    assert response.status_code == 422
    assert "&#39;https://pay.example.net/&#39; looks like a web or mail address" in \
        response.get_data(as_text=True)
    assert history(session, TemplateKey("invoice", "email_text", "en")) == []


def test_preview_fills_in_a_real_invoice_escaped(client, session, staff):
    sign_in(client, "ops@example.com")
    token = _csrf(client, EDIT)

    response = client.post(f"{EDIT}/preview", data={
        "source": "<b>{{ number }}</b> for {{ customer_name }}"},
        headers={"X-CSRFToken": token, "HX-Request": "true"})

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "&lt;b&gt;INV-77&lt;/b&gt; for Alice Martens" in page
    assert "Filled in with INV-77 of Alice Martens" in page
    assert "<b>INV-77" not in page
    html = client.post("/ops/templates/invoice/email_html/en/preview", data={
        "source": '<p>Dear {{ customer_name }}</p><p><a href="{{ link }}">Pay</a></p>'},
        headers={"X-CSRFToken": token}).get_data(as_text=True)
    assert "HTML body as plain text" in html and "Dear Alice Martens\nPay" in html
    assert "&lt;p&gt;Dear Alice Martens&lt;/p&gt;" in html  # the source, shown as text
    refused = client.post(f"{EDIT}/preview", data={"source": "{{ nope }}"},
                          headers={"X-CSRFToken": token}).get_data(as_text=True)
    assert "unknown placeholder {{ nope }}" in refused and 'role="alert"' in refused
    assert history(session, SUBJECT) == []


def test_restore_and_reset_are_new_versions(client, session, staff):
    sign_in(client, "ops@example.com")
    _save(client, "First {{ number }}")
    _save(client, "Second {{ number }}")
    token = _csrf(client, EDIT)

    assert client.post(f"{EDIT}/restore/1", data={"csrf_token": token}).status_code == 302
    session.expire_all()
    assert active_sources(session)[("invoice", "email_subject", "en")] == "First {{ number }}"
    newest = history(session, SUBJECT)[0]
    assert (newest.version, newest.restored_from) == (3, 1)
    assert "Restored version 1" in client.get(EDIT).get_data(as_text=True)

    assert client.post(f"{EDIT}/reset", data={"csrf_token": token,
                                              "note": "back to normal"}).status_code == 302
    session.expire_all()
    assert ("invoice", "email_subject", "en") not in active_sources(session)
    assert [e.kind for e in events_for(session, "message_template",
                                       "invoice:email_subject:en")] == [
        "template.saved", "template.saved", "template.restored", "template.reset"]


@pytest.mark.parametrize("email", ["agent@example.com", "auditor@example.com"])
def test_support_agents_and_auditors_may_view_but_not_edit(client, session, staff, email):
    sign_in(client, "ops@example.com")
    _save(client, "Bill {{ number }}")
    client.post("/sign-out", data={"csrf_token": _csrf(client, EDIT)})
    sign_in(client, email)

    assert client.get("/ops/templates").status_code == 200
    page = client.get(EDIT)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Bill {{ number }}" in text and "<textarea" not in text and "Restore" not in text
    token = _csrf(client, EDIT)
    assert client.post(EDIT, data={"csrf_token": token, "source": "X {{ number }}",
                                   "save": "1"}).status_code == 403
    assert client.post(f"{EDIT}/preview", data={"source": "x"},
                       headers={"X-CSRFToken": token}).status_code == 403
    assert client.post(f"{EDIT}/restore/1", data={"csrf_token": token}).status_code == 403
    assert client.post(f"{EDIT}/reset", data={"csrf_token": token}).status_code == 403
    assert len(history(session, SUBJECT)) == 1


def test_customers_get_403_and_unknown_texts_404(client, session, staff):
    sign_in(client, "alice@example.com")
    assert client.get("/ops/templates").status_code == 403
    assert client.get(EDIT).status_code == 403
    client.post("/sign-out", data={"csrf_token": _csrf(client, "/invoices")})
    sign_in(client, "ops@example.com")
    assert client.get("/ops/templates/invoice/email_subject/fr").status_code == 404
    assert client.get("/ops/templates/nonsense/email_subject/en").status_code == 404


def test_every_post_needs_the_csrf_token(client, session, staff):
    sign_in(client, "ops@example.com")
    for path in (EDIT, f"{EDIT}/preview", f"{EDIT}/reset", f"{EDIT}/restore/1"):
        response = client.post(path, data={"source": "Bill {{ number }}", "save": "1"})
        assert response.status_code == 400, path
    assert session.scalar(sa.select(sa.func.count()).select_from(TemplateVersion)) == 0


def test_pages_have_no_inline_code_and_label_every_field(client, session, staff):
    sign_in(client, "ops@example.com")
    _save(client, "Bill {{ number }}")
    _save(client, "Bill {{ number }} again")
    for path in ("/ops/templates", EDIT):
        page = client.get(path).get_data(as_text=True)
        # Real attributes and elements only: the HTML preview shows escaped source.
        assert not re.search(r"<[^>]*\s(?:style|on[a-z]+)=", page)
        assert "<script>" not in page
        ids = re.findall(r'\sid="([^"]+)"', page)
        assert len(ids) == len(set(ids)), path
        for field in re.findall(r"<(?:textarea|select|input)[^>]*>", page):
            if 'type="hidden"' not in field and 'type="submit"' not in field:
                field_id = re.search(r'\sid="([^"]+)"', field).group(1)
                assert f'for="{field_id}"' in page, (path, field_id)
