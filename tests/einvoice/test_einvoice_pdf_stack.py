"""Label/value rows as stacked cells: lines pair up, and what could wrap stands alone."""

from __future__ import annotations

from einvoice.pdf.stack import Block, stack, total_blocks, vat_columns


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
