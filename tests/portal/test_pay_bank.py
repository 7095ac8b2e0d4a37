"""Paying by bank transfer: the details and EPC QR code, and matching the money by reference."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from distribution.deliveries import Message
from distribution.events import events_for
from einvoice.creditor_reference import format_creditor_reference
from portal.models import InvoiceStatus, Payment
from portal.pay.links import check_token, issue_link, public_id
from portal.payment_providers.bank_transfer import record_bank_payment, transfer_instructions
from portal.payments import match_by_reference
from tests.factories import make_organisation
from tests.portal.pay_helpers import REFERENCE, bill, configure, csrf_from

PUBLIC = "http://127.0.0.1:5000"


@pytest.fixture
def billed(session):
    return bill(session)


def _visit(client, session, invoice):
    _, token = issue_link(session, invoice, days=30, purpose="operator", actor="test")
    client.get(f"/pay/t/{token}")
    pid = public_id(invoice)
    return pid, client.get(f"/pay/{pid}")


def test_the_transfer_details_carry_the_structured_reference(billed):
    details = transfer_instructions(billed.inv1, Decimal("120.15"))
    assert details.iban == "BE68 5390 0754 7034" and details.bic == "GKCCBEBB"
    assert details.structured and details.reference == format_creditor_reference(REFERENCE)
    lines = details.qr_payload.split("\n")
    assert lines[:8] == ["BCD", "002", "1", "SCT", "GKCCBEBB", "Testing Telecom NV",
                         "BE68539007547034", "EUR120.15"]
    assert lines[9] == REFERENCE  # the structured field, not the free text
    # Without an RF reference the invoice number goes in the text field.
    other = transfer_instructions(billed.inv2, Decimal("10.00"))
    assert not other.structured and other.reference == "INV-2"
    assert other.qr_payload.split("\n")[-1] == "INV-2"


def test_the_bank_page_shows_details_and_a_qr_image(client, session, billed):
    pid, page = _visit(client, session, billed.inv1)
    chosen = client.post(f"/pay/{pid}/pay", data={"csrf_token": csrf_from(page.data),
                                                  "provider": "bank_transfer",
                                                  "amount": "20.15"})
    assert chosen.status_code == 302 and chosen.location == f"/pay/{pid}/bank?amount=20.15"
    bank = client.get(chosen.location)
    assert bank.status_code == 200
    html = bank.get_data(as_text=True)
    assert "BE68 5390 0754 7034" in html and "GKCCBEBB" in html and "€20.15" in html
    assert format_creditor_reference(REFERENCE) in html
    assert f'src="/pay/{pid}/qr.svg?amount=20.15"' in html and "style=" not in html
    qr = client.get(f"/pay/{pid}/qr.svg?amount=20.15")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml"
    assert qr.data.startswith(b"<?xml") and b"<svg" in qr.data and b"style" not in qr.data
    # An amount above the balance falls back to the balance, never more.
    assert "€120.15" in client.get(f"/pay/{pid}/bank?amount=999").get_data(as_text=True)


def test_bank_transfer_can_be_switched_off(client, session, billed, app, monkeypatch):
    configure(app, monkeypatch, payment_providers=("stripe",))
    pid, page = _visit(client, session, billed.inv1)
    assert b"Continue to payment" not in page.data  # no provider left to offer
    assert client.get(f"/pay/{pid}/bank").status_code == 302


def test_a_reference_matches_however_it_was_typed(session, billed):
    org = billed.org.id
    assert match_by_reference(session, org, REFERENCE) is billed.inv1
    assert match_by_reference(session, org, format_creditor_reference(REFERENCE).lower()) \
        is billed.inv1
    broken = REFERENCE[:2] + ("00" if REFERENCE[2:4] != "00" else "01") + REFERENCE[4:]
    assert match_by_reference(session, org, broken) is None  # wrong check digits: a typo
    assert match_by_reference(session, org, "") is None
    assert match_by_reference(session, org, None) is None
    other = make_organisation(session, vat_id="BE0999999999")
    assert match_by_reference(session, other.id, REFERENCE) is None  # another seller's


def test_a_matched_transfer_pays_the_invoice_and_sends_a_receipt(session, billed):
    payment = record_bank_payment(
        session, billed.org, amount=Decimal("120.15"), reference=format_creditor_reference(
            REFERENCE), received_at=datetime(2026, 10, 20, tzinfo=UTC),
        provider_reference="BANK-LINE-1", actor="import", public_url=PUBLIC, link_days=30)
    assert payment.invoice is billed.inv1
    assert billed.inv1.status is InvoiceStatus.PAID
    [receipt] = session.scalars(sa.select(Message).where(Message.message_type == "receipt"))
    assert receipt.parameters["number"] == "INV-1" and receipt.parameters["amount"] == "€120.15"
    assert receipt.link.startswith(f"{PUBLIC}/pay/t/")
    assert receipt.subject_key == f"receipt:{billed.org.id}:INV-1:{payment.id}"


def test_an_unmatched_transfer_is_kept_for_a_person(session, billed):
    payment = record_bank_payment(
        session, billed.org, amount=Decimal("5.00"), reference="RF00 NOTHING",
        received_at=datetime(2026, 10, 20, tzinfo=UTC), provider_reference="BANK-LINE-2",
        actor="import", public_url=PUBLIC, link_days=30)
    assert payment.invoice_id is None and payment.organisation_id == billed.org.id
    assert [e.kind for e in events_for(session, "payment", str(payment.id))] == \
        ["payment.unmatched"]
    assert billed.inv1.status is InvoiceStatus.ISSUED
    assert session.scalars(sa.select(Message).where(Message.message_type == "receipt")).all() \
        == []
    assert session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1


def test_a_bank_file_is_matched_line_by_line_and_counts_once(runner, session, billed, tmp_path):
    path = tmp_path / "bank.csv"
    path.write_text("date,amount,reference,bank_reference\n"
                    f"2026-10-20,100.00,{format_creditor_reference(REFERENCE)},L1\n"
                    "2026-10-21,20.15,rf" + REFERENCE[2:] + ",L2\n"
                    "2026-10-21,9.99,for the coffee,L3\n")
    first = runner.invoke(args=["payments", "import", str(path)])
    assert first.exit_code == 0, first.output
    assert "2 matched to invoices (receipts planned), 1 unmatched, 0 already" in first.output
    session.refresh(billed.inv1)
    assert billed.inv1.status is InvoiceStatus.PAID
    again = runner.invoke(args=["payments", "import", str(path)])
    assert "0 matched to invoices (receipts planned), 0 unmatched, 3 already recorded" \
        in again.output
    assert session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 3


def test_a_wrong_bank_line_stops_the_file_and_names_the_fix(runner, session, billed, tmp_path):
    path = tmp_path / "bank.csv"
    path.write_text("date,amount,reference,bank_reference\n"
                    f"2026-10-20,100.00,{REFERENCE},L1\n"
                    "2026-10-21,\"20,15\",x,L2\n")
    result = runner.invoke(args=["payments", "import", str(path)])
    assert result.exit_code != 0
    assert "bank.csv line 3, amount: '20,15' must be above 0" in result.output
    assert session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0


def test_an_operator_reissues_a_link(runner, session, billed):
    first = runner.invoke(args=["payments", "link", "INV-1"])
    assert first.exit_code == 0 and "/pay/t/" in first.output
    second = runner.invoke(args=["payments", "link", "INV-1", "--reissue"])
    token = first.output.strip().splitlines()[0].rsplit("/", 1)[1]
    assert check_token(session, token).state == "revoked"
    assert "/pay/t/" in second.output
    assert runner.invoke(args=["payments", "link", "NOPE"]).exit_code != 0
