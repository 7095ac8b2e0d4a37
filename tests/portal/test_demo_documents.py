"""Every document the demo issues passes the official rules without a fatal finding: XSD and
CEN for all, Peppol BIS 3.0 for the documents of customers on Peppol, which declare it; the
others declare EN 16931 alone, the specification they meet."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
import sqlalchemy as sa

import einvoice
from distribution.documents import DatabaseStore
from einvoice.model import EN16931_CUSTOMIZATION_ID, PEPPOL_CUSTOMIZATION_ID
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
        assert findings.fatal == [], (invoice.number, findings.fatal)
        on_peppol = bool(invoice.customer.peppol_endpoint_id)
        declared = einvoice.read_ubl(ubl).customization_id
        if on_peppol:
            assert declared == PEPPOL_CUSTOMIZATION_ID
            assert findings.ran == ["xsd", "cen", "peppol"]
        else:
            assert declared == EN16931_CUSTOMIZATION_ID
            assert (findings.ran, findings.not_applicable) == (["xsd", "cen"], ["peppol"])
            # Held to Peppol's rules anyway, such a document could only fail them: no
            # consumer has an electronic address from Peppol's scheme list.
            assert "PEPPOL-EN16931-R004" in einvoice.validate(
                ubl, RULES_DIR, peppol=True).rule_ids("fatal")
        peppol_checked += on_peppol
        categories.update(line.vat_category for line in invoice.lines)
    assert 0 < peppol_checked < len(invoices)
    assert {"S", "AE", "E"} <= set(categories)
