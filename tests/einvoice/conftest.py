"""Fixtures for the einvoice tests: the official rules folder, XSDs and a document factory."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from einvoice import Address, Document, Line, Party, PaymentMeans

REPO = Path(__file__).resolve().parents[2]

DEFAULT_RULES = REPO.parent / "shared" / "einvoice-rules"


def _rules_path() -> Path:
    env = os.environ.get("EINVOICE_RULES_DIR")
    return Path(env) if env else DEFAULT_RULES


@pytest.fixture(scope="session")
def rules_dir() -> Path:
    """The official rules folder; skips the test when it is not there."""
    path = _rules_path()
    if not (path / "cen").is_dir() or not (path / "ubl-2.1").is_dir():
        pytest.skip(f"official e-invoice rules not found at {path} (set EINVOICE_RULES_DIR)")
    return path


@pytest.fixture(scope="session")
def examples(rules_dir: Path) -> list[Path]:
    """The ten official Peppol BIS 3.0 example documents."""
    files = sorted((rules_dir / "examples").glob("*.xml"))
    if not files:
        pytest.skip(f"no examples in {rules_dir / 'examples'}")
    return files


@pytest.fixture(scope="session")
def xsd(rules_dir: Path) -> Callable[[bytes], list[str]]:
    """Validate UBL bytes against the UBL 2.1 XSD; returns the error messages (empty = valid)."""
    from lxml import etree

    schemas = {
        name: etree.XMLSchema(
            etree.parse(str(rules_dir / "ubl-2.1" / "maindoc" / f"UBL-{name}-2.1.xsd"))
        )
        for name in ("Invoice", "CreditNote")
    }

    def validate(data: bytes) -> list[str]:
        root = etree.fromstring(data)
        schema = schemas[etree.QName(root).localname]
        if schema.validate(root):
            return []
        return [f"{error.line}: {error.message}" for error in schema.error_log]

    return validate


def seller() -> Party:
    """A Belgian seller with VAT id and Peppol endpoint."""
    return Party(
        name="Herald Demo BV",
        trading_name="Herald",
        endpoint_id="0123456749",
        endpoint_scheme="0208",
        vat_id="BE0123456749",
        legal_registration_id="0123456749",
        legal_registration_scheme="0208",
        address=Address(
            lines=["Rue de la Loi 1"], city="Brussels", postal_zone="1000", country_code="BE"
        ),
        contact_email="billing@herald.example",
    )


def buyer() -> Party:
    """A Dutch buyer with VAT id and Peppol endpoint."""
    return Party(
        name="Koper BV",
        endpoint_id="12345678",
        endpoint_scheme="0106",
        vat_id="NL123456789B01",
        address=Address(
            lines=["Damrak 1", "2nd floor"], city="Amsterdam", postal_zone="1012", country_code="NL"
        ),
    )


def line(number: int = 1, **overrides) -> Line:
    """One standard-rated line: 2 hours at 50.00, 21 % VAT, unless overridden."""
    values = dict(
        id=str(number),
        quantity=Decimal("2"),
        unit_code="HUR",
        net_price=Decimal("50.00"),
        item_name=f"Consulting {number}",
        vat_category="S",
        vat_rate=Decimal("21"),
    )
    values.update(overrides)
    return Line(**values)


@pytest.fixture
def make_document() -> Callable[..., Document]:
    """Factory: a valid Peppol invoice (one line unless ``lines`` given), overridable per field."""

    def make(**overrides) -> Document:
        values = dict(
            number="INV-2024-0001",
            issue_date=date(2024, 3, 1),
            due_date=date(2024, 3, 31),
            currency="EUR",
            seller=seller(),
            buyer=buyer(),
            buyer_reference="PO-77",
            lines=[line(1)],
            payment_means=[
                PaymentMeans(code="30", iban="BE71096123456769", payment_id="+++090/9337/55493+++")
            ],
            payment_terms="30 days net",
        )
        values.update(overrides)
        return Document(**copy.deepcopy(values))

    return make


@pytest.fixture
def make_line() -> Callable[..., Line]:
    """Factory for lines; see :func:`line`."""
    return line
