""""Review & pay" links: one invoice opened without a password, and nothing else."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from distribution.deliveries import Message
from distribution.events import events_for
from distribution.runs import WaveOptions
from portal.config import ConfigError, Settings
from portal.models import PayLink, PayLinkRequest
from portal.pay.links import (
    LinkState,
    check_token,
    issue_link,
    issue_links,
    link_expiry,
    public_id,
    token_digest,
)
from portal.rendering import review_url
from portal.runs import RunSelection, create_document_run
from tests.factories import make_user
from tests.portal.pay_helpers import bill, csrf_from
from tests.portal.test_web import sign_in

PUBLIC = "http://127.0.0.1:5000"


@pytest.fixture
def billed(session):
    return bill(session)


def _link(session, invoice, **kwargs):
    kwargs.setdefault("days", 30)
    kwargs.setdefault("purpose", "operator")
    kwargs.setdefault("actor", "test")
    return issue_link(session, invoice, **kwargs)


def _events(session, invoice):
    return events_for(session, "invoice", f"{invoice.organisation_id}:{invoice.number}")


def test_a_link_is_stored_only_as_its_hash_and_logged_without_the_token(session, billed):
    link, token = _link(session, billed.inv1)
    assert len(token) >= 43 and link.token_sha256 == token_digest(token)
    stored = session.execute(sa.select(PayLink.__table__)).all()
    assert token not in repr(stored)
    issued = [e for e in _events(session, billed.inv1) if e.kind == "pay_link.issued"]
    assert issued and issued[-1].payload["link_id"] == link.id
    assert token not in repr([e.payload for e in _events(session, billed.inv1)])
    assert check_token(session, token).state == LinkState.VALID
    assert check_token(session, token + "x").state == LinkState.UNKNOWN


def test_links_expire_days_after_the_due_date_or_after_issue_when_issued_late(billed):
    invoice = billed.inv1  # due 2026-10-31
    assert link_expiry(invoice, 30, today=date(2026, 10, 5)) == \
        datetime(2026, 12, 1, tzinfo=UTC)  # the whole of 30 November still works
    assert link_expiry(invoice, 120, today=date(2026, 10, 5)) == \
        datetime(2027, 3, 1, tzinfo=UTC)
    assert link_expiry(invoice, 500, today=date(2026, 10, 5)) == \
        datetime(2027, 3, 1, tzinfo=UTC)  # never past the 120-day ceiling
    assert link_expiry(invoice, 30, today=date(2027, 1, 10)) == \
        datetime(2027, 2, 10, tzinfo=UTC)  # a reminder long after the due date


def test_link_days_setting_is_checked(tmp_path):
    assert Settings.from_env(tmp_path, {}).pay_link_days_after_due == 30
    assert Settings.from_env(tmp_path, {"PAY_LINK_DAYS_AFTER_DUE": "120"}) \
        .pay_link_days_after_due == 120
    with pytest.raises(ConfigError, match="at most 120 days"):
        Settings.from_env(tmp_path, {"PAY_LINK_DAYS_AFTER_DUE": "121"})
    with pytest.raises(ConfigError, match="HERALD_PAYMENT_PROVIDERS"):
        Settings.from_env(tmp_path, {"HERALD_PAYMENT_PROVIDERS": "stripe,paypal"})


def test_a_link_opens_its_invoice_without_a_password(client, session, billed):
    link, token = _link(session, billed.inv1)
    opened = client.get(f"/pay/t/{token}")
    assert opened.status_code == 302
    assert opened.location == f"/pay/{public_id(billed.inv1)}"  # the token leaves the bar
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    page = client.get(opened.location)
    assert page.status_code == 200
    assert b"Invoice INV-1" in page.data and "€120.15".encode() in page.data
    assert b"Fibre internet" in page.data and b"Continue to payment" in page.data
    session.refresh(link)
    assert link.last_opened_at is not None
    assert "pay_link.opened" in [e.kind for e in _events(session, billed.inv1)]
    pdf = client.get(f"/pay/{public_id(billed.inv1)}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert pdf.mimetype == "application/pdf"


def test_a_link_opens_nothing_else(client, session, billed):
    _, token = _link(session, billed.inv1)
    client.get(f"/pay/t/{token}")
    other = public_id(billed.inv2)
    # Bob's invoice: the recovery page (which shows nothing of it), and 404 for the rest.
    page = client.get(f"/pay/{other}")
    assert page.status_code == 200 and b"Get a new link" in page.data
    assert b"INV-2" not in page.data and b"Bob" not in page.data
    for path in (f"/pay/{other}/pdf", f"/pay/{other}/bank", f"/pay/{other}/qr.svg"):
        assert client.get(path).status_code == 404, path
    csrf = csrf_from(client.get(f"/pay/{public_id(billed.inv1)}").data)
    assert client.post(f"/pay/{other}/pay", data={"csrf_token": csrf, "provider":
                                                  "bank_transfer", "amount": "1.00"}
                       ).status_code == 404
    # No account pages either: the grant is not a sign-in.
    assert client.get("/invoices").status_code == 302
    assert client.get("/invoices/INV-1").status_code == 302
    # A forged public id (right id, wrong check) is no invoice at all.
    forged = f"{billed.inv1.id}-0000000000000000"
    assert client.get(f"/pay/{forged}/pdf").status_code == 404


def test_an_expired_link_explains_and_offers_a_new_one(client, session, billed):
    link, token = _link(session, billed.inv1)
    link.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    session.flush()
    response = client.get(f"/pay/t/{token}")
    assert response.status_code == 410
    assert b"This link has expired" in response.data
    assert f"/pay/{public_id(billed.inv1)}".encode() in response.data
    assert client.get(f"/pay/{public_id(billed.inv1)}/pdf").status_code == 404


def test_a_link_that_expires_while_in_use_stops_working(client, session, billed):
    link, token = _link(session, billed.inv1)
    client.get(f"/pay/t/{token}")
    assert client.get(f"/pay/{public_id(billed.inv1)}/pdf").status_code == 200
    link.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    session.flush()
    assert client.get(f"/pay/{public_id(billed.inv1)}/pdf").status_code == 404
    assert b"Get a new link" in client.get(f"/pay/{public_id(billed.inv1)}").data


def test_an_unknown_token_is_a_404(client, billed):
    response = client.get("/pay/t/not-a-real-token")
    assert response.status_code == 404
    assert b"This link is not valid" in response.data


def test_reissuing_revokes_the_old_link(client, session, billed):
    old, old_token = _link(session, billed.inv1)
    client.get(f"/pay/t/{old_token}")  # this browser holds a grant from the old link
    new, new_token = _link(session, billed.inv1, purpose="recovery", revoke_previous=True)
    assert old.revoked_at is not None and new.revoked_at is None
    kinds = [e.kind for e in _events(session, billed.inv1)]
    assert kinds.count("pay_link.revoked") == 1
    assert client.get(f"/pay/{public_id(billed.inv1)}/pdf").status_code == 404
    response = client.get(f"/pay/t/{old_token}")
    assert response.status_code == 410 and b"This link was replaced" in response.data
    assert client.get(f"/pay/t/{new_token}").status_code == 302
    assert client.get(f"/pay/{public_id(billed.inv1)}/pdf").status_code == 200


def test_the_stable_address_sends_the_owner_to_the_invoice_page(client, session, billed):
    make_user(session, email="alice@example.com", customer=billed.alice)
    make_user(session, email="bob@example.com", customer=billed.bob)
    anonymous = client.get(f"/pay/{public_id(billed.inv1)}")
    assert anonymous.status_code == 200 and b"Email me a new link" in anonymous.data
    sign_in(client, "alice@example.com")
    owner = client.get(f"/pay/{public_id(billed.inv1)}")
    assert owner.status_code == 302 and owner.location == "/invoices/INV-1"
    # Another customer's invoice, signed in: 404, page and sub-pages alike.
    assert client.get(f"/pay/{public_id(billed.inv2)}").status_code == 404
    assert client.get(f"/pay/{public_id(billed.inv2)}/pdf").status_code == 404


def test_the_pdf_carries_the_stable_address(billed):
    url = review_url(PUBLIC, billed.inv1)
    assert url == f"{PUBLIC}/pay/{public_id(billed.inv1)}"
    assert "token" not in url and "/t/" not in url


def _without_csrf(page: bytes) -> bytes:
    return re.sub(rb'("X-CSRFToken": "|name="csrf_token"[^>]*value=")[^"]+', rb"\1", page)


def test_recovery_answers_the_same_whether_or_not_the_address_matched(client, session, billed,
                                                                      app):
    old, _ = _link(session, billed.inv1)
    pid = public_id(billed.inv1)
    page = client.get(f"/pay/{pid}")
    huey = app.extensions["herald.queue"][0]
    before = len(huey.pending())
    wrong = client.post(f"/pay/{pid}/recover", data={"csrf_token": csrf_from(page.data),
                                                     "email": "mallory@example.com"})
    assert len(huey.pending()) == before  # nothing sent
    right = client.post(f"/pay/{pid}/recover", data={"csrf_token": csrf_from(page.data),
                                                     "email": "C1@Example.com"})
    assert wrong.status_code == right.status_code == 200
    # Byte for byte, but for the CSRF token (it carries the second it was signed in).
    assert _without_csrf(wrong.data) == _without_csrf(right.data)
    assert b"Check your email" in right.data
    session.refresh(old)
    assert old.revoked_at is not None  # the reissue revoked the earlier link
    links = session.scalars(sa.select(PayLink).where(PayLink.invoice_id == billed.inv1.id)
                            .order_by(PayLink.id)).all()
    assert [link.purpose for link in links] == ["operator", "recovery"]
    pending = huey.pending()
    assert len(pending) == before + 1  # enqueued after the request committed
    email = pending[-1].args[0]
    assert email["address"] == "c1@example.com" and "/pay/t/" in email["link"]
    assert email["subject"] == "Your link to invoice INV-1"
    huey.flush()
    # An address of another customer does not match either.
    bob = client.post(f"/pay/{pid}/recover", data={"csrf_token": csrf_from(page.data),
                                                   "email": "c2@example.com"})
    assert bob.data == wrong.data
    assert session.scalar(sa.select(sa.func.count()).select_from(PayLink).where(
        PayLink.invoice_id == billed.inv1.id)) == 2


def test_recovery_is_rate_limited(client, session, billed, app):
    pid = public_id(billed.inv1)
    csrf = csrf_from(client.get(f"/pay/{pid}").data)
    for _ in range(5):
        ok = client.post(f"/pay/{pid}/recover", data={"csrf_token": csrf,
                                                       "email": "x@example.com"})
        assert ok.status_code == 200
    limited = client.post(f"/pay/{pid}/recover", data={"csrf_token": csrf,
                                                        "email": "c1@example.com"})
    assert limited.status_code == 429 and b"Too many requests" in limited.data
    assert session.scalar(sa.select(sa.func.count()).select_from(PayLinkRequest)) == 5
    assert session.scalar(sa.select(sa.func.count()).select_from(PayLink)) == 0


def test_recovery_needs_the_csrf_token_and_a_valid_address(client, billed):
    pid = public_id(billed.inv1)
    assert client.post(f"/pay/{pid}/recover", data={"email": "c1@example.com"}) \
        .status_code == 400
    csrf = csrf_from(client.get(f"/pay/{pid}").data)
    bad = client.post(f"/pay/{pid}/recover", data={"csrf_token": csrf, "email": "not-mail"})
    assert bad.status_code == 422 and b"Enter an email address like" in bad.data


def test_a_run_gives_each_message_a_link_of_its_own(client, session, billed):
    summary = create_document_run(
        session, RunSelection(), WaveOptions(), name="October", public_url=PUBLIC,
        created_by="test", link_days=60)
    assert summary.messages_created == 2
    messages = session.scalars(sa.select(Message).where(Message.run_id == summary.run.id)
                               .order_by(Message.id)).all()
    links = [m.link for m in messages]
    assert all(link.startswith(f"{PUBLIC}/pay/t/") for link in links)
    assert len(set(links)) == 2 and all(m.parameters["link"] == m.link for m in messages)
    rows = session.scalars(sa.select(PayLink).where(PayLink.purpose == "message")).all()
    assert len(rows) == 2
    assert {r.expires_at for r in rows} == {datetime(2026, 12, 31, tzinfo=UTC)} or \
        all(r.expires_at > datetime.now(UTC) for r in rows)
    token = links[0].rsplit("/", 1)[1]
    opened = client.get(f"/pay/t/{token}")
    assert opened.status_code == 302
    # A second run skips the messages already made and issues no further links.
    again = create_document_run(session, RunSelection(), WaveOptions(), name="again",
                                public_url=PUBLIC, created_by="test")
    assert again.messages_created == 0
    assert len(session.scalars(sa.select(PayLink)).all()) == 2


def test_bulk_links_are_all_valid_and_logged(session, billed):
    tokens = issue_links(session, [billed.inv1, billed.inv2], days=30, purpose="message",
                         actor="test")
    assert set(tokens) == {billed.inv1.id, billed.inv2.id}
    for invoice in (billed.inv1, billed.inv2):
        result = check_token(session, tokens[invoice.id])
        assert result.valid and result.link.invoice_id == invoice.id
        assert "pay_link.issued" in [e.kind for e in _events(session, invoice)]


def test_the_owner_pays_from_the_invoice_page(client, session, billed):
    make_user(session, email="alice@example.com", customer=billed.alice)
    make_user(session, email="bob@example.com", customer=billed.bob)
    sign_in(client, "alice@example.com")
    pid = public_id(billed.inv1)
    invoice_page = client.get("/invoices/INV-1").get_data(as_text=True)
    assert f'href="/pay/{pid}?pay=1"' in invoice_page and "Pay €120.15" in invoice_page
    page = client.get(f"/pay/{pid}?pay=1")
    assert page.status_code == 200 and b"Continue to payment" in page.data
    chosen = client.post(f"/pay/{pid}/pay", data={"csrf_token": csrf_from(page.data),
                                                  "provider": "bank_transfer", "amount": "120.15"})
    assert chosen.status_code == 302 and client.get(chosen.location).status_code == 200
    client.post("/sign-out", data={"csrf_token": csrf_from(page.data)})
    sign_in(client, "bob@example.com")
    assert client.get(f"/pay/{pid}?pay=1").status_code == 404
    assert client.get(f"/pay/{pid}/bank").status_code == 404
