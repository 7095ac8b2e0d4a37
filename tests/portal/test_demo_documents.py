"""Every document the demo issues passes the official rules (XSD, CEN and, for customers on
Peppol, Peppol BIS 3.0) without a fatal finding."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
import sqlalchemy as sa

import einvoice
from distribution.documents import DatabaseStore
from portal.demo.seed import seed_demo
from portal.models import Invoice
from tests.conftest import RULES_DIR

pytestmark = pytest.mark.skipif(not RULES_DIR.is_dir(), reason=f"no rules at {RULES_DIR}")


def test_demo_documents_pass_the_official_rules(session, tmp_path):
    store = DatabaseStore()
    seed_demo(session, tmp_path, store, today=date(2026, 11, 23), customers=40, months=2)
    invoices = session.scalars(sa.select(Invoice).order_by(Invoice.id)).all()
    categories = Counter()
    peppol_checked = 0
    assert len(invoices) >= 80
    for invoice in invoices:
        ubl = store.get(session, invoice.ubl_sha256)
        findings = einvoice.validate(ubl, RULES_DIR)
        assert {"xsd", "cen", "peppol"} <= set(findings.ran)
        on_peppol = bool(invoice.customer.peppol_endpoint_id)
        fatal = [f for f in findings.fatal if on_peppol or f.source != "peppol"]
        assert fatal == [], (invoice.number, fatal)
        peppol_checked += on_peppol
        categories.update(line.vat_category for line in invoice.lines)
    assert peppol_checked > 0
    assert {"S", "AE", "E"} <= set(categories)
