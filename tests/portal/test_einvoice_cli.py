"""``herald einvoice export | validate | render``."""

from __future__ import annotations

import subprocess

import pytest
import sqlalchemy as sa

from distribution.documents import DatabaseStore
from portal import create_app
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import Locator
from portal.imports.service import import_documents
from portal.models import Invoice
from tests.conftest import RULES_DIR
from tests.factories import invoice_json, make_customer, make_organisation

needs_rules = pytest.mark.skipif(not RULES_DIR.is_dir(), reason=f"no rules at {RULES_DIR}")
BROKEN = RULES_DIR / "examples-broken" / "01-wrong-total.xml"


@pytest.fixture
def issued(session) -> list[Invoice]:
    org = make_organisation(session)
    make_customer(session, org, "C1")
    make_customer(session, org, "C2", kind="business", name="Acme BV", vat_id="BE0403019261",
                  peppol_endpoint_scheme="0208", peppol_endpoint_id="0403019261")
    documents = [document_from_mapping(invoice_json(number, customer), Locator("t", number),
                                       source="json")
                 for number, customer in (("INV-1", "C1"), ("INV-2", "C1"), ("2026/3", "C1"),
                                          ("PEP-1", "C2"))]
    documents.append(document_from_mapping(invoice_json("DRAFT-1", "C1", status="draft"),
                                           Locator("t", "draft"), source="json"))
    import_documents(session, documents, file="t", store=DatabaseStore())
    return list(session.scalars(sa.select(Invoice).where(Invoice.ubl_sha256.is_not(None))
                                .order_by(Invoice.id)))


def test_export_writes_the_stored_ubl_byte_for_byte(runner, session, issued, tmp_path):
    result = runner.invoke(args=["einvoice", "export", "INV-2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Exported 1 document to" in result.output
    stored = DatabaseStore().get(session, issued[1].ubl_sha256)
    assert (tmp_path / "INV-2.xml").read_bytes() == stored
    assert sorted(p.name for p in tmp_path.iterdir()) == ["INV-2.xml"]


def test_export_all_writes_every_issued_document(runner, session, issued, tmp_path):
    result = runner.invoke(args=["einvoice", "export", "--all", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026_3.xml", "INV-1.xml", "INV-2.xml",
                                                         "PEP-1.xml"]
    for invoice in issued:
        name = invoice.number.replace("/", "_") + ".xml"
        assert (tmp_path / name).read_bytes() == DatabaseStore().get(session, invoice.ubl_sha256)


def test_export_with_pdf_writes_the_stored_pdf_beside_the_ubl(runner, session, issued, tmp_path):
    result = runner.invoke(args=["einvoice", "export", "INV-1", "--pdf", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "with their PDFs" in result.output
    session.refresh(issued[0])
    assert issued[0].pdf_sha256
    pdf = (tmp_path / "INV-1.pdf").read_bytes()
    assert pdf == DatabaseStore().get(session, issued[0].pdf_sha256)


def test_export_of_an_unknown_or_draft_number_fails_clearly(runner, issued, tmp_path):
    for number in ("NOPE-9", "DRAFT-1"):
        result = runner.invoke(args=["einvoice", "export", "INV-1", number,
                                     "--out", str(tmp_path / number)])
        assert result.exit_code != 0
        assert f"not issued or not found: {number}" in result.output


def test_export_needs_numbers_or_all(runner, issued, tmp_path):
    neither = runner.invoke(args=["einvoice", "export", "--out", str(tmp_path)])
    both = runner.invoke(args=["einvoice", "export", "INV-1", "--all", "--out", str(tmp_path)])
    for result in (neither, both):
        assert result.exit_code == 2 and "give document numbers or --all" in result.output


@needs_rules
def test_validate_accepts_an_exported_document(runner, issued, tmp_path):
    # A customer on Peppol: its document must pass all three rule sets.
    runner.invoke(args=["einvoice", "export", "PEP-1", "--out", str(tmp_path)])
    result = runner.invoke(args=["einvoice", "validate", str(tmp_path / "PEP-1.xml")])
    assert result.exit_code == 0, result.output
    assert "Summary: 1 file, 0 fatal" in result.output
    assert "not applied" not in result.output


@needs_rules
def test_every_exported_document_passes_the_rules_it_declares(runner, issued, tmp_path):
    """Customers outside Peppol get documents that declare EN 16931 alone, which they meet;
    held to Peppol BIS (--peppol), such a document fails, as a consumer has no Peppol
    address."""
    assert runner.invoke(args=["einvoice", "export", "--all", "--out",
                               str(tmp_path)]).exit_code == 0
    files = sorted(str(path) for path in tmp_path.glob("*.xml"))
    assert len(files) == 4
    result = runner.invoke(args=["einvoice", "validate", *files])
    assert result.exit_code == 0, result.output
    assert "Summary: 4 files, 0 fatal" in result.output
    assert "rules applied: cen, peppol, xsd." in result.output
    assert "3 of 4 do not declare Peppol BIS Billing 3.0" in result.output
    consumer = str(tmp_path / "INV-1.xml")
    as_peppol = runner.invoke(args=["einvoice", "validate", "--peppol", consumer])
    assert as_peppol.exit_code == 1 and "[PEPPOL-EN16931-R004]" in as_peppol.output


@needs_rules
def test_validate_names_the_broken_rule_and_its_hint(runner):
    result = runner.invoke(args=["einvoice", "validate", str(BROKEN)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    at = next(i for i, line in enumerate(lines) if "[BR-CO-15]" in line)
    assert lines[at].startswith(f"{BROKEN}: fatal")
    assert lines[at + 1].startswith("  hint: ")
    summary = next(line for line in result.output.splitlines() if line.startswith("Summary:"))
    assert "1 file," in summary and " 0 fatal" not in summary


def test_validate_without_rules_says_the_official_rules_were_not_applied(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
                      "HERALD_INSTANCE_PATH": str(tmp_path / "instance"),
                      "EINVOICE_RULES_DIR": "", "TESTING": True})
    source = RULES_DIR / "examples-broken" / "01-wrong-total.xml"
    path = tmp_path / "doc.xml"
    if source.is_file():
        path.write_bytes(source.read_bytes())
    else:
        pytest.skip("no example document to validate")
    result = app.test_cli_runner().invoke(args=["einvoice", "validate", str(path)])
    assert "The official CEN and Peppol rules were not applied" in result.output
    assert "rules applied: " in result.output


def test_render_writes_the_pdf_and_stores_it_once(runner, session, issued, tmp_path):
    out = tmp_path / "pdfs" / "inv-1.pdf"
    first = runner.invoke(args=["einvoice", "render", "INV-1", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert "rendered and stored PDF of INV-1" in first.output
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                          check=True, text=True).stdout
    assert "INV-1" in text and "€120.15" in text
    session.refresh(issued[0])
    assert out.read_bytes() == DatabaseStore().get(session, issued[0].pdf_sha256)
    again = runner.invoke(args=["einvoice", "render", "INV-1", "--out", str(tmp_path / "b.pdf")])
    assert "Wrote the stored PDF of INV-1" in again.output
    assert (tmp_path / "b.pdf").read_bytes() == out.read_bytes()


def test_render_refuses_unknown_and_draft_numbers(runner, issued, tmp_path):
    unknown = runner.invoke(args=["einvoice", "render", "NOPE", "--out", str(tmp_path / "x.pdf")])
    assert unknown.exit_code == 1 and "no document numbered 'NOPE'" in unknown.output
    draft = runner.invoke(args=["einvoice", "render", "DRAFT-1", "--out",
                                str(tmp_path / "x.pdf")])
    assert draft.exit_code == 1 and "DRAFT-1 is not issued" in draft.output
    assert not (tmp_path / "x.pdf").exists()
