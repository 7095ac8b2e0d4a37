"""Benchmark: memory of a rendering worker over many different documents (default 10,000).

A worker renders each issued invoice once: different numbers, customers, line
counts, languages and QR codes, PDF/A-3b with the UBL attached. Any cache keyed
on content (fonts, images, stylesheets, templates) that grows per document shows
here as resident memory that keeps rising. Run from the repository root::

    .venv/bin/python bench/pdf_memory.py                 # 10,000 documents, RSS every 1,000
    .venv/bin/python bench/pdf_memory.py -n 2000 --every 250

Prints a progress line ``rss after N documents: X MB`` at each sample (flushed,
so an interrupted run still shows its trend) and at the end ``BENCH <name>
<value> <unit>`` lines: RSS after warm-up and at the end, growth per 1,000
documents over the second half of the run (the steady state; the first
documents still fill Pango's and fontconfig's caches), peak RSS, CPU per
document.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pdf_render import LOGO, ten_line_invoice  # bench/ is on sys.path when run as a script

from einvoice import Branding, Line, compute, render_pdf, write_ubl
from einvoice.creditor_reference import creditor_reference

LANGUAGES = ("en", "nl", "es")
STATUSES = (None, "overdue", "paid", None)


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def document(index: int):
    """The ``index``-th document: its own number, reference, amounts and 1 to 15 lines."""
    base = ten_line_invoice()
    lines = [
        Line(
            id=str(number),
            quantity=Decimal(1 + (index + number) % 7),
            unit_code="HUR" if number % 2 else "C62",
            net_price=Decimal(index % 997 + 1) / 10,
            item_name=f"Service {index}-{number}",
            vat_category="S",
            vat_rate=Decimal("21") if (index + number) % 3 else Decimal("6"),
        )
        for number in range(1, 2 + index % 15)
    ]
    means = replace(base.payment_means[0], payment_id=creditor_reference(f"{index:010d}"))
    doc = replace(
        base,
        number=f"INV-{index:07d}",
        lines=lines,
        payment_means=[means],
        totals=None,
        vat_breakdown=[],
    )
    doc.buyer = replace(base.buyer, name=f"Customer {index}")
    return compute(doc)


def main(argv: list[str] | None = None) -> None:
    """Render the documents, sampling RSS, and print the BENCH lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="documents (default 10,000)")
    parser.add_argument("--every", type=int, default=1_000, help="RSS sample interval")
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args(argv)

    branding = Branding(seller_name="Herald Bench", logo=LOGO, logo_mime_type="image/svg+xml")

    def render(index: int) -> bytes:
        doc = document(index)
        return render_pdf(
            doc,
            branding,
            LANGUAGES[index % 3],
            review_url=f"https://pay.example/i/{index:x}",
            status=STATUSES[index % 4],
            attach_ubl=write_ubl(doc),
        )

    for index in range(args.warmup):
        render(1_000_000 + index)
    gc.collect()
    start_rss = _rss_mb()
    print(f"rss after warm-up ({args.warmup} documents): {start_rss:.1f} MB", flush=True)
    samples = [(0, start_rss)]
    cpu = time.process_time()
    for index in range(1, args.n + 1):
        render(index)
        if index % args.every == 0 or index == args.n:
            rss = _rss_mb()
            samples.append((index, rss))
            print(f"rss after {index} documents: {rss:.1f} MB", flush=True)
    cpu_ms = (time.process_time() - cpu) * 1000 / args.n

    half = [sample for sample in samples if sample[0] >= args.n // 2]
    (first_n, first_rss), (last_n, last_rss) = half[0], half[-1]
    slope = (last_rss - first_rss) * 1000 / (last_n - first_n) if last_n > first_n else 0.0
    print(f"BENCH pdf_memory_documents {args.n} documents")
    print(f"BENCH pdf_memory_rss_start_mb {start_rss:.1f} MB")
    print(f"BENCH pdf_memory_rss_end_mb {samples[-1][1]:.1f} MB")
    print(f"BENCH pdf_memory_growth_second_half_mb_per_1000 {slope:.2f} MB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"BENCH pdf_memory_peak_rss_mb {peak:.1f} MB")
    print(f"BENCH pdf_memory_cpu_ms_per_doc {cpu_ms:.1f} ms")


if __name__ == "__main__":
    main()
