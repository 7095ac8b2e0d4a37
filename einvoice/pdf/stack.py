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

__all__ = ["Block", "fits_stacked", "stack", "total_blocks", "vat_columns"]

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
