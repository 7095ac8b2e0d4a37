"""The string builder writes what lxml would: same escaping, empty aggregates, refusals."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from lxml import etree

from einvoice import read_ubl, write_ubl
from einvoice.ubl.namespaces import CAC_NS, CBC_NS, INVOICE_NS
from einvoice.ubl.xmlbuild import agg, amount, serialize, text

AWKWARD = 'a & b < c > d\r\n\t"quoted" \'single\' é € 😀'


def _lxml_bytes(value: str, attribute: str) -> bytes:
    root = etree.Element(f"{{{INVOICE_NS}}}Invoice",
                         nsmap={None: INVOICE_NS, "cac": CAC_NS, "cbc": CBC_NS})
    party = etree.SubElement(root, f"{{{CAC_NS}}}Party")
    element = etree.SubElement(party, f"{{{CBC_NS}}}Name", {"schemeID": attribute})
    element.text = value
    etree.SubElement(root, f"{{{CAC_NS}}}Empty")
    total = etree.SubElement(root, f"{{{CBC_NS}}}PayableAmount", {"currencyID": "EUR"})
    total.text = "1E+2"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_same_bytes_as_lxml():
    node: list = []
    text(agg(node, "Party"), "Name", AWKWARD, schemeID=AWKWARD)
    agg(node, "Empty")
    amount(node, "PayableAmount", Decimal("1E+2"), "EUR")
    ours = serialize("Invoice", INVOICE_NS, node)
    assert ours == _lxml_bytes(AWKWARD, AWKWARD).replace(b">1E+2<", b">100<")
    parsed = etree.fromstring(ours)
    name = parsed.find(f"{{{CAC_NS}}}Party/{{{CBC_NS}}}Name")
    assert name.text == AWKWARD
    assert name.get("schemeID") == AWKWARD


def test_values_and_omissions():
    node: list = []
    text(node, "A", None)
    text(node, "B", "")
    text(node, "C", True)
    text(node, "D", date(2024, 2, 29))
    text(node, "E", Decimal("-0.00"))
    text(node, "F", "x", listID=None, name="")
    assert node == ["<cbc:C>true</cbc:C>", "<cbc:D>2024-02-29</cbc:D>", "<cbc:E>0.00</cbc:E>",
                    "<cbc:F>x</cbc:F>"]


@pytest.mark.parametrize("bad", ["nul\x00", "bell\x07", "\ufffe", "lone \ud800"])
def test_text_xml_cannot_hold_is_refused(bad):
    with pytest.raises(ValueError, match="XML compatible"):
        text([], "Note", bad)
    with pytest.raises(ValueError, match="XML compatible"):
        text([], "ID", "ok", schemeID=bad)


def test_awkward_text_round_trips_through_the_writer(make_document, xsd):
    doc = make_document(notes=[AWKWARD.replace("\r", "")])
    doc.seller.name = 'Q"uote & <co>\tT'
    written = write_ubl(doc)
    assert xsd(written) == []
    back = read_ubl(written)
    assert back.notes == [AWKWARD.replace("\r", "").strip()]
    assert back.seller.name == doc.seller.name
