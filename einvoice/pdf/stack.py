"""Label/value rows printed as stacked lines: two cells per block instead of one row per label.

WeasyPrint's cost is Python work per box, and a table row of two one-line cells
is seven boxes where one more line in a stacked cell is two. The template sets
the two cells with ``white-space: pre`` and the same font size and line height,
so label N and value N share a baseline. That only holds while no line wraps:
a value (or label) longer than ``limit`` characters gets a block of its own,
where it may wrap and the row simply grows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Block",
    "description_fits",
    "fits_stacked",
    "line_blocks",
    "stack",
    "total_blocks",
    "vat_columns",
]

# Characters that surely fit on one line of a totals label or a VAT breakdown cell.
TOTALS_FITS, VAT_FITS = 26, 20


@dataclass(frozen=True, slots=True)
class Block:
    """One row of the printed block: labels and values joined by newlines."""

    labels: str
    values: str
    wrap: bool = False  # a lone long row: may wrap, so it is not ``pre``
    css: str = ""  # a class for the row (rule above, bold, ...), empty when none


def stack(rows: Iterable[tuple[str, str]], limit: int, *, css: str = "") -> list[Block]:
    """Group ``(label, value)`` rows into blocks; a row too long for one line stands alone."""
    blocks: list[Block] = []
    labels: list[str] = []
    values: list[str] = []

    def flush() -> None:
        if labels:
            blocks.append(Block("\n".join(labels), "\n".join(values), css=css))
            labels.clear()
            values.clear()

    for label, value in rows:
        if len(label) > limit or len(value) > limit:
            flush()
            blocks.append(Block(label, value, wrap=True, css=css))
        else:
            labels.append(label)
            values.append(value)
    flush()
    return blocks


def fits_stacked(columns: Iterable[Iterable[str]], limit: int) -> bool:
    """Whether every text of every column stays under ``limit`` characters (so none wraps)."""
    return all(len(text) <= limit for column in columns for text in column)


def total_blocks(rows: list[dict]) -> list[Block]:
    """Totals as stacked blocks: a new block at each rule, the bold total alone."""
    groups: list[list[dict]] = []
    for row in rows:
        if not groups or row.get("rule") or groups[-1][-1].get("strong"):
            groups.append([])
        groups[-1].append(row)
    blocks: list[Block] = []
    for group in groups:
        css = " ".join(key for key in ("rule", "strong") if group[0].get(key))
        pairs = ((row["label"], row["amount"]) for row in group)
        blocks.extend(stack(pairs, TOTALS_FITS, css=css))
    return blocks


def vat_columns(rows: list[dict]) -> list[str] | None:
    """The VAT breakdown as four stacked columns, or None when a reason or long text needs rows."""
    if not rows or any(row["reason"] for row in rows):
        return None
    columns = [[row[key] for row in rows] for key in ("category", "rate", "taxable", "vat")]
    return ["\n".join(column) for column in columns] if fits_stacked(columns, VAT_FITS) else None


# The line table's description column: 44% of the 178 mm text width less 4 mm of padding
# (210 pt), in ems of the 8.4 pt body font: 25 em. A description is stacked only when it
# surely fits, so it can never run into the quantity column.
DESCRIPTION_EMS = 25.0
# Widths in em of DejaVu Sans, the template's font (tests/einvoice check them against the
# font file): these glyphs are at most 1.07 em wide, every other character of ASCII and
# Latin-1 Supplement at most 0.70 em.
_WIDE = frozenset("#%&+<=>@DGHMNOQUW^mw~©¬®±¼½¾ÆÐÑÒÓÔÕÖ×ØÙÚÛÜæ÷ĎĐĜĞĠĢĤĦŃŅŇŉŊŌŎŐŒœŨŪŬŮŰŲŴŵ—…")
WIDE_EM, NARROW_EM = 1.07, 0.70
# Measured beyond Latin-1 too: the euro sign, dashes, curly quotes, ellipsis.
_PUNCTUATION = frozenset("€–—‘’“”…")


def _measured(char: str) -> bool:
    code = ord(char)
    return 0x20 <= code < 0x7F or 0xA0 <= code < 0x180 or char in _PUNCTUATION


def description_fits(text: str) -> bool:
    """Whether ``text`` surely fits on one line of the description column.

    An upper bound of its width from two classes of glyph widths; any character
    outside the measured set (another script, a control character, a newline)
    answers no, and the line keeps a row of its own, where it may wrap.
    """
    ems = 0.0
    for char in text:
        if not _measured(char):
            return False
        ems += WIDE_EM if char in _WIDE else NARROW_EM
    return ems <= DESCRIPTION_EMS


def line_blocks(lines: list[dict]) -> list[dict]:
    """Invoice lines as rows of the line table: runs of plain lines become one stacked row.

    A line with details (description, note, period) or allowances and charges, or
    whose name may not fit one line, keeps a row of its own: ``{"line": line}``.
    Consecutive plain lines become ``{"columns": [names, quantities × prices, rates,
    amounts]}``, each a cell of newline-separated texts. Four cells instead of four per
    line: WeasyPrint lays out a third of the boxes for the table.
    """
    blocks: list[dict] = []
    run: list[dict] = []

    def flush() -> None:
        if run:
            texts = [(line["name"], f"{line['quantity']} × {line['price']}", line["vat"],
                      line["amount"]) for line in run]
            blocks.append({"columns": ["\n".join(column) for column in zip(*texts, strict=True)]})
            run.clear()

    for line in lines:
        plain = not line["details"] and not line["adjustments"] and all(
            "\n" not in text and "\r" not in text
            for text in (line["quantity"], line["price"], line["vat"], line["amount"]))
        if plain and description_fits(line["name"]):
            run.append(line)
        else:
            flush()
            blocks.append({"line": line})
    flush()
    return blocks
