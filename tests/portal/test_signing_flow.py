"""Signing end to end: the command asks, the email (through a real SMTP peer) carries the
link, two signers sign in order, reminders go out, an unfinished request expires."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from distribution.deliveries import Delivery, Message
from distribution.documents import DatabaseStore
from distribution.events import events_for, verify_chain
from portal import create_app
from portal.db import get_database
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.migrate import upgrade
from portal.models import RequestStatus, SignatureRequest, SignerStatus
from tests.factories import invoice_json, make_customer, make_organisation
from tests.peers import smtp as peers
from tests.portal.test_runs_end_to_end import _dispatch
from tests.portal.test_signing import CONSENT, csrf, png_data_url

smtp_peer = peers.smtp_peer


@pytest.fixture
def herald(databases, tmp_path, smtp_peer):
    """One Dutch customer with one issued invoice; email goes to a real SMTP peer."""
    app = create_app({
        "DATABASE_URL": databases.new_url(), "HERALD_INSTANCE_PATH": str(tmp_path),
        "MAIL_FROM": "billing@seller.example", "MAIL_FROM_NAME": "Testing Telecom",
        "SMTP_HOST": smtp_peer.host, "SMTP_PORT": str(smtp_peer.port),
        "HERALD_PUBLIC_URL": "https://portal.example", "HUEY_IMMEDIATE": True,
        "SIGNING_REMIND_HOURS": "48", "SIGNING_EXPIRE_DAYS": "30",
    })
    database = get_database(app)
    upgrade(database.engine)
    with database.session_scope() as session:
        org = make_organisation(session)
        make_customer(session, org, "C1", name="Anna Peeters", language="nl")
        import_documents(session, [document_from_mapping(invoice_json("INV-1", "C1"),
                                                         Locator("t", "1"), source="json")],
                         file="t", store=DatabaseStore())
    yield app
    database.engine.dispose()


def _mails_to(smtp_peer, address: str):
    return [m.parsed() for m in smtp_peer.messages if address in m.rcpt_tos]


def _link(mail) -> str:
    body = mail.get_body(("plain",)).get_content()
    url = re.search(r"https://portal\.example/sign/[A-Za-z0-9_-]+", body).group(0)
    return urlsplit(url).path


def _request(app) -> SignatureRequest:
    with get_database(app).session_scope() as session:
        request = session.scalars(sa.select(SignatureRequest)).one()
        request.signers  # noqa: B018 - loaded before the session closes
        return request


def _sign(client, link: str, **fields) -> int:
    page = client.get(link, headers={"User-Agent": "Phone browser"})
    assert page.status_code == 200, page.data
    return client.post(link, headers={"User-Agent": "Phone browser"},
                       data={"csrf_token": csrf(page.data), "consent": "y", **fields}
                       ).status_code


def test_two_signers_sign_in_order_from_their_emails(herald, smtp_peer, tmp_path):
    runner = herald.test_cli_runner()
    created = runner.invoke(args=[
        "signatures", "request", "INV-1", "--signer", "anna@customer.example",
        "--signer", "ben@customer.example", "--mode", "sign", "--text", CONSENT])
    assert created.exit_code == 0, created.output
    assert "Signature request 1 for INV-1: 2 signer(s), anna@customer.example" \
        in created.output

    _dispatch(herald)
    (anna_mail,) = _mails_to(smtp_peer, "anna@customer.example")
    assert anna_mail["Subject"] == "Te ondertekenen: INV-1"  # the customer's language
    assert _mails_to(smtp_peer, "ben@customer.example") == []  # not his turn yet

    waiting = runner.invoke(args=["signatures", "list"])
    assert "waiting for anna@customer.example" in waiting.output
    client = herald.test_client()
    assert _sign(client, _link(anna_mail), typed_name="Anna Peeters") == 303
    with get_database(herald).session_scope() as session:
        anna_states = {d.channel.value: d.state.value for d in session.scalars(
            sa.select(Delivery).join(Message).where(Message.subject_key == "signature:1:1"))}
    assert anna_states["email"] == "viewed"  # opening the link counts as viewing the email
    _dispatch(herald)
    (ben_mail,) = _mails_to(smtp_peer, "ben@customer.example")
    assert _link(ben_mail) != _link(anna_mail)
    assert client.get(_link(anna_mail)).status_code == 200  # "you signed", nothing more
    assert _sign(client, _link(ben_mail), drawn_signature=png_data_url()) == 303

    request = _request(herald)
    assert request.status is RequestStatus.COMPLETED
    with get_database(herald).session_scope() as session:
        pdf = DatabaseStore().get(session, request.signed_sha256)
        events = events_for(session, "signature_request", str(request.id))
        assert verify_chain(session) is None
    assert [e.kind for e in events] == [
        "signature.created", "signature.requested", "signature.viewed", "signature.signed",
        "signature.requested", "signature.viewed", "signature.signed", "signature.completed"]
    assert events[-1].payload["signed_sha256"] == hashlib.sha256(pdf).hexdigest()
    signed = [e for e in events if e.kind == "signature.signed"]
    assert [e.payload["email"] for e in signed] == ["anna@customer.example",
                                                    "ben@customer.example"]
    assert signed[1].payload["drawn_sha256"] and signed[1].payload["typed_name"] is None
    shown = runner.invoke(args=["signatures", "show", "1", "--out", str(tmp_path / "s.pdf")])
    assert shown.exit_code == 0, shown.output
    assert "1. anna@customer.example signed" in shown.output
    assert f"signed {request.signed_sha256}" in shown.output
    assert (tmp_path / "s.pdf").read_bytes() == pdf
    listed = runner.invoke(args=["signatures", "list", "--status", "completed"])
    assert listed.output.startswith("1\tcompleted\tINV-1\t2 signer(s)")
    text = re.sub(r"\s+", " ", PdfReader(io.BytesIO(pdf)).pages[-1].extract_text())
    assert "anna@customer.example" in text and "ben@customer.example" in text
    assert "Factuur INV-1" in text  # the certificate speaks the customer's language
    assert "Anna Peeters" in text and CONSENT in text and "Phone browser" in text


def test_the_current_signer_is_reminded_then_the_request_expires(herald, smtp_peer):
    runner = herald.test_cli_runner()
    created = runner.invoke(args=[
        "signatures", "request", "INV-1", "--signer", "anna@customer.example",
        "--signer", "ben@customer.example", "--mode", "acknowledge", "--text", CONSENT])
    assert created.exit_code == 0, created.output
    _dispatch(herald)
    now = datetime.now(UTC)

    def remind(at: datetime) -> str:
        result = runner.invoke(args=["signatures", "remind", "--now",
                                     at.strftime("%Y-%m-%dT%H:%M")])
        assert result.exit_code == 0, result.output
        return result.output.strip()

    assert remind(now + timedelta(hours=47)) == "0 signer(s) reminded, 0 request(s) expired."
    assert remind(now + timedelta(hours=49)) == "1 signer(s) reminded, 0 request(s) expired."
    assert remind(now + timedelta(hours=50)) == "0 signer(s) reminded, 0 request(s) expired."
    _dispatch(herald)
    first, reminder = _mails_to(smtp_peer, "anna@customer.example")
    assert _link(reminder) == _link(first)  # one link per signer, however often reminded
    assert _mails_to(smtp_peer, "ben@customer.example") == []

    assert remind(now + timedelta(days=31)) == "0 signer(s) reminded, 1 request(s) expired."
    request = _request(herald)
    assert request.status is RequestStatus.EXPIRED
    assert [s.status for s in request.signers] == [SignerStatus.EXPIRED, SignerStatus.EXPIRED]
    with get_database(herald).session_scope() as session:
        kinds = [e.kind for e in events_for(session, "signature_request", str(request.id))]
    assert kinds == ["signature.created", "signature.requested", "signature.reminded",
                     "signature.expired"]
    page = herald.test_client().get(_link(first))
    assert page.status_code == 410 and b"This request has expired" in page.data


def test_the_command_refuses_bad_input_with_the_field_named(herald):
    runner = herald.test_cli_runner()
    unknown = runner.invoke(args=["signatures", "request", "INV-404", "--signer",
                                  "a@example.com", "--text", CONSENT])
    assert unknown.exit_code == 1 and "there is no invoice INV-404" in unknown.output
    bad = runner.invoke(args=["signatures", "request", "INV-1", "--signer", "nope",
                              "--text", CONSENT])
    assert bad.exit_code == 1 and "signer: 'nope' is not an email address" in bad.output
    neither = runner.invoke(args=["signatures", "request", "--signer", "a@example.com",
                                  "--text", CONSENT])
    assert neither.exit_code == 2 and "give an invoice NUMBER" in neither.output
    with get_database(herald).session_scope() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(SignatureRequest)) == 0


def test_an_uploaded_pdf_from_the_command_line(herald, tmp_path):
    with get_database(herald).session_scope() as session:
        from portal.models import Invoice
        from portal.rendering import render_invoice_pdf

        invoice = session.scalars(sa.select(Invoice)).one()
        pdf = DatabaseStore().get(session, render_invoice_pdf(
            session, invoice, DatabaseStore(), public_url="https://portal.example"))
    (tmp_path / "refund.pdf").write_bytes(pdf)
    (tmp_path / "not.pdf").write_bytes(b"plain text")
    runner = herald.test_cli_runner()
    result = runner.invoke(args=[
        "signatures", "request", "--pdf", str(tmp_path / "refund.pdf"), "--customer", "C1",
        "--title", "Refund authorisation", "--signer", "anna@customer.example",
        "--mode", "acknowledge", "--text", CONSENT])
    assert result.exit_code == 0, result.output
    assert "for Refund authorisation: 1 signer(s)" in result.output
    refused = runner.invoke(args=[
        "signatures", "request", "--pdf", str(tmp_path / "not.pdf"), "--customer", "C1",
        "--signer", "anna@customer.example", "--text", CONSENT])
    assert refused.exit_code == 1 and "pdf: the file is not a PDF" in refused.output


def test_the_periodic_task_reminds_like_the_command(herald, smtp_peer):
    from portal.signing.tasks import reminders_task

    runner = herald.test_cli_runner()
    assert runner.invoke(args=["signatures", "request", "INV-1", "--signer",
                               "anna@customer.example", "--text", CONSENT]).exit_code == 0
    with get_database(herald).session_scope() as session:
        signer = session.scalars(sa.select(SignatureRequest)).one().signers[0]
        signer.asked_at -= timedelta(hours=49)  # as if asked two days ago
    assert reminders_task(herald).call_local() == {"reminded": 1, "expired": 0}
    assert reminders_task(herald).call_local() == {"reminded": 0, "expired": 0}
    _dispatch(herald)
    assert len(_mails_to(smtp_peer, "anna@customer.example")) == 2
