"""Payment reminders from the portal: planned per stage, sent once, stopped when settled."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from distribution.deliveries import Delivery, DeliveryState, Message
from distribution.documents import DatabaseStore
from distribution.events import events_for
from portal import create_app
from portal.db import get_database
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import ImportRejected, Locator
from portal.imports.service import import_documents
from portal.migrate import upgrade
from portal.models import Invoice, InvoiceStatus, PaymentMethod
from portal.payments import record_payment
from tests.factories import INVOICE_JSON_PAYABLE, invoice_json, make_customer, make_organisation
from tests.peers import smtp as peers
from tests.portal.test_runs_end_to_end import _dispatch

smtp_peer = peers.smtp_peer
SEND = ["--rate", "6000", "--window", "0-24", "--weekends"]


@pytest.fixture
def herald(databases, tmp_path, smtp_peer):
    """Five invoices due 31 October 2026: three open (one partly paid), one paid, one credited."""
    app = create_app({
        "DATABASE_URL": databases.new_url(), "HERALD_INSTANCE_PATH": str(tmp_path),
        "MAIL_FROM": "billing@seller.example", "MAIL_FROM_NAME": "Testing Telecom",
        "SMTP_HOST": smtp_peer.host, "SMTP_PORT": str(smtp_peer.port),
        "HERALD_PUBLIC_URL": "https://portal.example", "HUEY_IMMEDIATE": True,
    })
    database = get_database(app)
    upgrade(database.engine)
    with database.session_scope() as session:
        org = make_organisation(session)
        make_customer(session, org, "C1", name="Anna Peeters", language="nl")
        make_customer(session, org, "C2", name="Bob Smith", language="en")
        make_customer(session, org, "C3", name="Carmen Ruiz", language="es",
                      time_zone="Europe/Madrid")
        rows = [invoice_json(f"INV-{n}", customer) for n, customer in
                ((1, "C1"), (2, "C2"), (3, "C3"), (4, "C2"), (5, "C2"))]
        rows.append(invoice_json("CN-1", "C2", type="credit_note", due_date=None,
                                 payment_terms="Deducted from your next invoice",
                                 preceding_invoice={"number": "INV-4",
                                                    "issue_date": "2026-10-01"}))
        documents = [document_from_mapping(row, Locator("t", str(n)), source="json")
                     for n, row in enumerate(rows)]
        try:
            import_documents(session, documents, file="t", store=DatabaseStore())
        except ImportRejected as rejected:  # show why, not just that
            raise AssertionError([str(p) for p in rejected.problems]) from rejected
        _pay(session, "INV-5", INVOICE_JSON_PAYABLE)
        _pay(session, "INV-3", Decimal("50.00"))
    yield app
    database.engine.dispose()


def _pay(session, number: str, amount: Decimal) -> None:
    invoice = session.scalars(sa.select(Invoice).where(Invoice.number == number)).one()
    record_payment(session, invoice, amount=amount, received_at=datetime.now(UTC),
                   method=PaymentMethod.BANK_TRANSFER, provider="bank",
                   provider_reference=f"{number}-{amount}", actor="test")


def _reminders(app) -> dict[str, Message]:
    with get_database(app).session_scope() as session:
        messages = session.scalars(sa.select(Message).where(Message.message_type == "reminder"))
        return {m.subject_key: m for m in messages}


def _deliveries(app, subject_key: str) -> dict[str, DeliveryState]:
    with get_database(app).session_scope() as session:
        return {d.channel.value: d.state for d in session.scalars(
            sa.select(Delivery).join(Message).where(Message.subject_key == subject_key))}


def _plain(text: str) -> str:
    return text.replace("\xa0", " ").replace("\u202f", " ")


def test_the_final_notice_goes_once_with_its_fee_in_words_and_on_the_pdf(herald, smtp_peer,
                                                                         tmp_path):
    runner = herald.test_cli_runner()
    created = runner.invoke(args=["reminders", "run", "--today", "2026-11-25", *SEND,
                                  "--start"])
    assert created.exit_code == 0, created.output
    assert "3 reminders (+21 days: 3); 3 with a PDF" in created.output

    messages = _reminders(herald)
    # INV-4 is fully credited by CN-1 and INV-5 is paid: neither is reminded.
    assert set(messages) == {"reminder:1:INV-1:21", "reminder:1:INV-2:21",
                             "reminder:1:INV-3:21"}
    anna = messages["reminder:1:INV-1:21"].parameters
    assert (anna["tone"], anna["stage"]) == (4, 21)
    assert _plain(anna["fee"]) == "€ 7,50" and _plain(anna["total"]) == "€ 127,65"
    carmen = messages["reminder:1:INV-3:21"].parameters
    assert _plain(carmen["amount"]) == "70,15 €"  # 120.15 less the 50.00 paid
    assert _plain(carmen["total"]) == "77,65 €"
    with get_database(herald).session_scope() as session:
        planned = [e for e in events_for(session, "invoice", "1:INV-1")
                   if e.kind == "reminder.planned"]
    assert [(e.payload["stage"], e.payload["fee"]) for e in planned] == [(21, "7.50")]

    _dispatch(herald)
    mails = {m.rcpt_tos[0]: m.parsed() for m in smtp_peer.messages}
    assert set(mails) == {"c1@example.com", "c2@example.com", "c3@example.com"}
    mail = mails["c1@example.com"]
    assert mail["Subject"] == "Laatste herinnering: factuur INV-1 is vervallen"
    body = _plain(mail.get_body(("plain",)).get_content())
    assert "Dit is onze laatste herinnering voor factuur INV-1" in body
    assert "herinneringskost van € 7,50, waarmee het totaal € 127,65 wordt" in body
    assert "uiterlijk op 9 december 2026" in body
    assert re.search(r"https://portal\.example/pay/t/[\w-]+", body)  # a link of its own
    assert mails["c2@example.com"]["Subject"] == "Final notice: invoice INV-2 is overdue"
    assert mails["c3@example.com"]["Subject"] == (
        "Último aviso: la factura INV-3 está vencida")
    pdfs = [part for part in mail.iter_attachments()
            if part.get_content_type() == "application/pdf"]
    assert [p.get_filename() for p in pdfs] == ["INV-1.pdf"]
    if shutil.which("pdftotext"):
        (tmp_path / "r.pdf").write_bytes(pdfs[0].get_content())
        text = _plain(subprocess.run(["pdftotext", "-enc", "UTF-8", str(tmp_path / "r.pdf"),
                                      "-"], capture_output=True, check=True, text=True).stdout)
        assert "Vanaf 21 november 2026 geldt een herinneringskost van € 7,50" in " ".join(
            text.split())

    again = runner.invoke(args=["reminders", "run", "--today", "2026-11-25", *SEND])
    assert again.output.strip() == "No reminders due on 2026-11-25."
    later = runner.invoke(args=["reminders", "run", "--today", "2026-12-20", *SEND])
    assert later.output.strip() == "No reminders due on 2026-12-20."
    assert len(_reminders(herald)) == 3
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0


def test_each_stage_once_and_paying_cancels_the_unsent_reminder(herald):
    runner = herald.test_cli_runner()
    before = runner.invoke(args=["reminders", "run", "--today", "2026-10-28", *SEND])
    assert "3 reminders (-3 days: 3); 0 with a PDF" in before.output
    overdue = runner.invoke(args=["reminders", "run", "--today", "2026-11-08", *SEND])
    assert "3 reminders (+7 days: 3)" in overdue.output
    # The pre-due notes were never sent: the firmer reminder supersedes them.
    assert set(_deliveries(herald, "reminder:1:INV-1:-3").values()) == {DeliveryState.CANCELLED}
    bob = _reminders(herald)["reminder:1:INV-2:7"].parameters
    assert bob["tone"] == 3 and bob["fee"] == "" and bob["total"] == ""

    with get_database(herald).session_scope() as session:
        _pay(session, "INV-1", INVOICE_JSON_PAYABLE)
    assert set(_deliveries(herald, "reminder:1:INV-1:7").values()) == {DeliveryState.CANCELLED}
    assert set(_deliveries(herald, "reminder:1:INV-2:7").values()) == {DeliveryState.PENDING}
    with get_database(herald).session_scope() as session:
        cancelled = session.scalars(sa.select(Delivery).join(Message).where(
            Message.subject_key == "reminder:1:INV-1:7")).all()
        events = events_for(session, "delivery", str(cancelled[0].id))
        stopped = [e for e in events_for(session, "invoice", "1:INV-1")
                   if e.kind == "reminder.stopped"]
    assert events[-1].kind == "delivery.cancelled"
    assert events[-1].payload["reason"] == "invoice paid"
    assert stopped and stopped[0].payload["reason"] == "paid"

    # Paid: nothing more for INV-1, the others get their final notice.
    final = runner.invoke(args=["reminders", "run", "--today", "2026-11-25", *SEND])
    assert "2 reminders (+21 days: 2)" in final.output
    assert not any(key.startswith("reminder:1:INV-1:21") for key in _reminders(herald))


def test_a_dispute_stops_the_unsent_reminder_at_the_next_run(herald):
    runner = herald.test_cli_runner()
    runner.invoke(args=["reminders", "run", "--today", "2026-11-08", *SEND])
    with get_database(herald).session_scope() as session:
        invoice = session.scalars(sa.select(Invoice).where(Invoice.number == "INV-2")).one()
        invoice.status = InvoiceStatus.DISPUTED
    result = runner.invoke(args=["reminders", "run", "--today", "2026-11-09", *SEND])
    assert result.output.strip() == ("No reminders due on 2026-11-09; 2 unsent reminders of "
                                     "settled invoices cancelled.")
    assert set(_deliveries(herald, "reminder:1:INV-2:7").values()) == {DeliveryState.CANCELLED}
    assert set(_deliveries(herald, "reminder:1:INV-3:7").values()) == {DeliveryState.PENDING}


def test_a_policy_file_sets_stages_and_fees(herald, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text('{"stages": [{"offset_days": 5, "tone": 3, "fee": "2.50", '
                      '"with_pdf": true}]}')
    runner = herald.test_cli_runner()
    result = runner.invoke(args=["reminders", "run", "--today", "2026-11-30", "--policy",
                                 str(policy), *SEND])
    assert "3 reminders (+5 days: 3); 3 with a PDF" in result.output, result.output
    assert _plain(_reminders(herald)["reminder:1:INV-2:5"].parameters["fee"]) == "€2.50"
    policy.write_text('{"stages": [{"offset_days": 0, "tone": 2, "fee": "2.50"}]}')
    refused = runner.invoke(args=["reminders", "run", "--policy", str(policy)])
    assert refused.exit_code != 0 and "fees apply only after the due date" in refused.output


def test_a_credit_note_that_settles_the_invoice_stops_its_reminders_when_issued(herald):
    runner = herald.test_cli_runner()
    runner.invoke(args=["reminders", "run", "--today", "2026-11-08", *SEND])
    assert set(_deliveries(herald, "reminder:1:INV-2:7").values()) == {DeliveryState.PENDING}
    full = invoice_json("CN-3", "C2", type="credit_note", due_date=None,
                        payment_terms="Deducted from your next invoice",
                        preceding_invoice={"number": "INV-2", "issue_date": "2026-10-01"})
    with get_database(herald).session_scope() as session:
        import_documents(session, [document_from_mapping(full, Locator("t", "1"), source="json")],
                         file="t", store=DatabaseStore())
        stopped = [e for e in events_for(session, "invoice", "1:INV-2")
                   if e.kind == "reminder.stopped"]
    # Issuing it was enough: no reminder run in between.
    assert set(_deliveries(herald, "reminder:1:INV-2:7").values()) == {DeliveryState.CANCELLED}
    assert stopped and stopped[0].payload["reason"] == "credited"
    assert set(_deliveries(herald, "reminder:1:INV-3:7").values()) == {DeliveryState.PENDING}
