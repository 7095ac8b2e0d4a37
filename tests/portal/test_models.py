"""Billing records: exact money, constraints, and the rules the schema enforces."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.models import (
    DocumentKind,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentKind,
    PaymentMethod,
    Role,
    User,
)
from tests.factories import make_customer, make_organisation


def _invoice(org, customer, number="INV-1", **overrides) -> Invoice:
    fields = dict(
        organisation_id=org.id, customer_id=customer.id, kind=DocumentKind.INVOICE,
        type_code="380", number=number, status=InvoiceStatus.ISSUED, issue_date=date(2026, 10, 1),
        currency="EUR", line_extension_amount=Decimal("0.10"), allowance_total=Decimal("0"),
        charge_total=Decimal("0"), tax_exclusive_amount=Decimal("0.10"),
        tax_amount=Decimal("0.02"), tax_inclusive_amount=Decimal("0.12"),
        prepaid_amount=Decimal("0"), rounding_amount=Decimal("0"),
        payable_amount=Decimal("0.12"), source="test", content_sha256="0" * 64,
    )
    fields.update(overrides)
    return Invoice(**fields)


def test_amounts_round_trip_exactly(session):
    org = make_organisation(session)
    customer = make_customer(session, org)
    # 0.1 + 0.2 is the classic float trap; 12345678901234.56 has more digits than a double holds.
    invoice = _invoice(org, customer, payable_amount=Decimal("12345678901234.56"))
    invoice.lines.append(InvoiceLine(
        position=1, line_id="1", item_name="Energy", quantity=Decimal("0.300000"),
        unit_code="KWH", net_price=Decimal("0.333333"), vat_category="S",
        vat_rate=Decimal("21"), net_amount=Decimal("0.10")))
    session.add(invoice)
    session.flush()
    session.expire_all()
    stored = session.scalars(sa.select(Invoice).where(Invoice.number == "INV-1")).one()
    assert stored.payable_amount == Decimal("12345678901234.56")
    assert isinstance(stored.payable_amount, Decimal)
    assert stored.lines[0].net_price == Decimal("0.333333")
    assert stored.lines[0].quantity + Decimal("0.1") + Decimal("0.2") == Decimal("0.6")


def test_float_amounts_are_refused(session):
    org = make_organisation(session)
    customer = make_customer(session, org)
    session.add(_invoice(org, customer, payable_amount=0.12))
    with pytest.raises(sa.exc.StatementError, match="Decimal, not float"):
        session.flush()


def test_more_decimals_than_the_column_holds_are_refused_not_rounded(session):
    org = make_organisation(session)
    customer = make_customer(session, org)
    session.add(_invoice(org, customer, payable_amount=Decimal("0.125")))
    with pytest.raises(sa.exc.StatementError, match="more than 2 decimals"):
        session.flush()


def test_invoice_number_is_unique_per_seller(session):
    org = make_organisation(session)
    other = make_organisation(session, vat_id="BE0987654312", legal_name="Other NV")
    customer = make_customer(session, org)
    other_customer = make_customer(session, other)
    session.add(_invoice(org, customer))
    session.add(_invoice(other, other_customer))  # the same number at another seller is fine
    session.flush()
    with pytest.raises(sa.exc.IntegrityError), session.begin_nested():
        session.add(_invoice(org, customer))
        session.flush()


def test_status_outside_the_enum_is_refused_by_the_database(session):
    org = make_organisation(session)
    customer = make_customer(session, org)
    session.add(_invoice(org, customer))
    session.flush()
    with pytest.raises(sa.exc.IntegrityError), session.begin_nested():
        session.execute(sa.text("UPDATE invoices SET status = 'lost'"))


def test_a_customer_sign_in_must_point_at_a_customer(session):
    with pytest.raises(sa.exc.IntegrityError), session.begin_nested():
        session.add(User(email="x@example.com", name="x", role=Role.CUSTOMER,
                         session_token="t"))
        session.flush()


def test_a_payment_recorded_twice_by_its_provider_is_refused(session):
    org = make_organisation(session)
    customer = make_customer(session, org)
    invoice = _invoice(org, customer)
    session.add(invoice)
    session.flush()

    def payment():
        return Payment(organisation_id=org.id, invoice_id=invoice.id, kind=PaymentKind.PAYMENT,
                       method=PaymentMethod.BANK_TRANSFER, amount=Decimal("0.12"),
                       currency="EUR", received_at=datetime(2026, 10, 2, tzinfo=UTC),
                       provider="bank", provider_reference="LINE-1")

    session.add(payment())
    session.flush()
    with pytest.raises(sa.exc.IntegrityError), session.begin_nested():
        session.add(payment())
        session.flush()


def test_timestamps_come_back_timezone_aware(session):
    org = make_organisation(session)
    session.expire_all()
    assert session.get(type(org), org.id).created_at.tzinfo is not None
