"""Helpers for the import tests: a seller, files on disk and the import command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from distribution.events import Event
from portal.models import Customer, Invoice
from tests.conftest import RULES_DIR
from tests.factories import make_customer, make_organisation

EXAMPLES = RULES_DIR / "examples"
BROKEN_EXAMPLES = RULES_DIR / "examples-broken"
BASE_EXAMPLE_SELLER_VAT = "GB1232434"  # cac:AccountingSupplierParty//cbc:CompanyID


@pytest.fixture
def seller(session):
    """The one seller of the test, with customer C1."""
    org = make_organisation(session)
    make_customer(session, org, "C1")
    return org


@pytest.fixture
def write_json(tmp_path):
    """Write a JSON import file and return its path; Decimals become JSON numbers as written."""
    def write(data, name: str = "invoices.json") -> Path:
        text = json.dumps(data, indent=1, default=lambda value: f"@@{value}@@")
        path = tmp_path / name
        path.write_text(re.sub(r'"@@(.*?)@@"', r"\1", text), encoding="utf-8")
        return path
    return write


@pytest.fixture
def write_bytes(tmp_path):
    """Write any import file and return its path."""
    def write(name: str, data: bytes | str) -> Path:
        path = tmp_path / name
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return path
    return write


@pytest.fixture
def run_import(runner):
    """Run ``herald invoices import`` on the given paths and return the click result."""
    def run(*paths: Path, options: tuple[str, ...] = ()):
        return runner.invoke(args=["invoices", "import", *options, *map(str, paths)])
    return run


def row_counts(session) -> dict[str, int]:
    """How many invoices, customers and events the database holds."""
    session.expire_all()
    return {model.__tablename__: session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (Invoice, Customer, Event)}


def invoice(session, number: str) -> Invoice:
    """The stored invoice with ``number``, read afresh."""
    session.expire_all()
    return session.scalars(sa.select(Invoice).where(Invoice.number == number)).one()


def problem_lines(result) -> list[str]:
    """The indented problem lines the command printed on stderr."""
    return [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
