"""Label/value rows as stacked cells: lines pair up, and what could wrap stands alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from einvoice.pdf.stack import (
    _WIDE,
    DESCRIPTION_EMS,
    NARROW_EM,
    WIDE_EM,
    Block,
    description_fits,
    line_blocks,
    stack,
    total_blocks,
    vat_columns,
)
from tests.einvoice.test_einvoice_pdf import needs_pdftotext, pdf_text


def test_short_rows_share_one_block_line_for_line():
    blocks = stack([("Number", "INV-1"), ("Due date", "31 March 2024")], limit=26)
    assert blocks == [Block("Number\nDue date", "INV-1\n31 March 2024")]


def test_a_row_too_long_for_one_line_gets_a_block_of_its_own_that_may_wrap():
    long = "PO-" + "7" * 40
    blocks = stack([("Number", "INV-1"), ("Order", long), ("Period", "March")], limit=26)
    assert blocks == [
        Block("Number", "INV-1"),
        Block("Order", long, wrap=True),
        Block("Period", "March"),
    ]
    # every label still faces its own value
    for block in blocks:
        assert block.labels.count("\n") == block.values.count("\n")


def test_totals_break_at_each_rule_and_the_bold_total_stands_alone():
    rows = [
        {"label": "Lines", "amount": "€10.00"},
        {"label": "Discount", "amount": "-€1.00"},
        {"label": "Net", "amount": "€9.00", "rule": True},
        {"label": "VAT", "amount": "€1.89"},
        {"label": "Total", "amount": "€10.89", "rule": True, "strong": True},
        {"label": "Paid", "amount": "-€5.00"},
    ]
    assert total_blocks(rows) == [
        Block("Lines\nDiscount", "€10.00\n-€1.00"),
        Block("Net\nVAT", "€9.00\n€1.89", css="rule"),
        Block("Total", "€10.89", css="rule strong"),
        Block("Paid", "-€5.00"),
    ]


def test_vat_breakdown_is_stacked_only_when_no_reason_or_long_text_needs_rows():
    row = {"category": "Standard rate", "rate": "21%", "taxable": "€100.00", "vat": "€21.00"}
    low = dict(row, rate="6%", taxable="€50.00", vat="€3.00")
    assert vat_columns([row | {"reason": ""}, low | {"reason": ""}]) == [
        "Standard rate\nStandard rate", "21%\n6%", "€100.00\n€50.00", "€21.00\n€3.00"]
    assert vat_columns([row | {"reason": "Exempt education"}]) is None
    assert vat_columns([row | {"reason": "", "category": "Intra-community supply"}]) is None
    assert vat_columns([]) is None


# --- The line table: runs of one-line items as one row of four stacked cells ---

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _line(name: str, **extra) -> dict:
    return {"name": name, "details": [], "quantity": "2 pcs", "price": "€60.00", "vat": "21%",
            "amount": "€120.00", "adjustments": [], **extra}


def test_plain_lines_stack_and_a_line_with_more_keeps_its_row():
    adjusted = _line("Manuals", adjustments=[{"label": "Loyalty", "amount": "-€20.00"}])
    detailed = _line("Support", details=["March 2024"])
    long = _line("A description far too long to be sure it fits on one line of its column")
    blocks = line_blocks([_line("A"), _line("B"), adjusted, _line("C"), detailed, long,
                          _line("D")])
    assert blocks == [
        {"columns": ["A\nB", "2 pcs × €60.00\n2 pcs × €60.00", "21%\n21%",
                     "€120.00\n€120.00"]},
        {"line": adjusted},
        {"columns": ["C", "2 pcs × €60.00", "21%", "€120.00"]},
        {"line": detailed},
        {"line": long},
        {"columns": ["D", "2 pcs × €60.00", "21%", "€120.00"]},
    ]
    # a newline or a character the widths do not cover keeps the row too
    assert line_blocks([_line("two\nlines")]) == [{"line": _line("two\nlines")}]
    assert line_blocks([_line("日本語")]) == [{"line": _line("日本語")}]


def test_description_bound_is_an_upper_bound_of_the_real_width():
    assert description_fits("Service item 10")
    assert description_fits("Consulting services, March 2024")
    assert not description_fits("W" * 24)
    assert not description_fits("Tab\tstop")
    if not DEJAVU.exists():
        pytest.skip("DejaVu Sans not installed")
    from fontTools.ttLib import TTFont

    font = TTFont(DEJAVU)
    cmap, metrics, em = font.getBestCmap(), font["hmtx"], font["head"].unitsPerEm
    for code in [*range(0x20, 0x7F), *range(0xA0, 0x180), *map(ord, "€–—‘’“”…")]:
        width = metrics[cmap[code]][0] / em
        bound = WIDE_EM if chr(code) in _WIDE else NARROW_EM
        assert width <= bound, (chr(code), width, bound)
    # the column is 44% of 178 mm less 4 mm of padding, at 8.4 pt: 25 em of the font
    assert DESCRIPTION_EMS * 8.4 <= (0.44 * 178 - 4) / 25.4 * 72


@needs_pdftotext
def test_stacked_lines_print_as_rows_do(make_document, make_line, tmp_path, monkeypatch):
    from einvoice import Branding, compute, render_pdf
    from einvoice.pdf import render_html, view

    # 60 lines: the stacked row breaks over pages where the rows would
    doc = compute(make_document(lines=[make_line(id=str(n)) for n in range(1, 61)]))
    branding = Branding(seller_name="Stack Test")
    assert render_html(doc, branding).count('class="stacked"') == 2  # lines and VAT
    stacked = render_pdf(doc, branding, "nl")
    monkeypatch.setattr(view, "line_blocks", lambda lines: [{"line": line} for line in lines])
    assert render_html(doc, branding).count('class="stacked"') == 1
    rows = render_pdf(doc, branding, "nl")
    assert pdf_text(stacked, tmp_path) == pdf_text(rows, tmp_path)
