"""Benchmark: render a one-page 10-line invoice to PDF N times with :func:`einvoice.render_pdf`.

Run from the repository root::

    .venv/bin/python bench/pdf_render.py            # 200 renders after 5 warm-up renders
    .venv/bin/python bench/pdf_render.py -n 1000    # more renders for a steadier RSS slope
    .venv/bin/python bench/pdf_render.py --pdfa     # PDF/A-3b with the UBL attached

Prints ``BENCH <name> <value> <unit>`` lines: median and p95 wall time per
render, CPU time per render (this process only; rendering uses one core), and
resident memory growth per 1000 renders measured after the warm-up.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from einvoice import (
    Address,
    Branding,
    Document,
    Line,
    Party,
    PaymentMeans,
    compute,
    render_pdf,
    write_ubl,
)
from einvoice.creditor_reference import creditor_reference

LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">'
    b'<rect x="0" y="4" width="32" height="32" rx="6" fill="#1f3a5f"/>'
    b'<text x="40" y="27" font-size="18" fill="#1f3a5f">Bench</text></svg>'
)


def ten_line_invoice() -> Document:
    """A computed one-page invoice: 10 lines at two VAT rates, RF reference, IBAN."""
    seller = Party(
        name="Herald Bench BV",
        vat_id="BE0123456749",
        endpoint_id="0123456749",
        endpoint_scheme="0208",
        address=Address(
            lines=["Rue de la Loi 1"], city="Brussels", postal_zone="1000", country_code="BE"
        ),
    )
    buyer = Party(
        name="Koper BV",
        vat_id="NL123456789B01",
        endpoint_id="12345678",
        endpoint_scheme="0106",
        address=Address(
            lines=["Damrak 1"], city="Amsterdam", postal_zone="1012", country_code="NL"
        ),
    )
    lines = [
        Line(
            id=str(number),
            quantity=Decimal(number),
            unit_code="HUR" if number % 2 else "C62",
            net_price=Decimal("49.90"),
            item_name=f"Service item {number}",
            vat_category="S",
            vat_rate=Decimal("21") if number % 3 else Decimal("6"),
        )
        for number in range(1, 11)
    ]
    return compute(
        Document(
            number="INV-2024-0001",
            issue_date=date(2024, 3, 1),
            due_date=date(2024, 3, 31),
            currency="EUR",
            seller=seller,
            buyer=buyer,
            buyer_reference="PO-77",
            lines=lines,
            payment_means=[
                PaymentMeans(
                    code="30",
                    iban="BE71096123456769",
                    bic="GKCCBEBB",
                    payment_id=creditor_reference("2024000001"),
                )
            ],
            payment_terms="30 days net",
        )
    )


def _rss_mb() -> float:
    # Current RSS from /proc (Linux); ru_maxrss would only give the peak.
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the BENCH lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="measured renders (default 200)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pdfa", action="store_true", help="PDF/A-3b with the UBL attached")
    args = parser.parse_args(argv)

    doc = ten_line_invoice()
    branding = Branding(seller_name="Herald Bench", logo=LOGO, logo_mime_type="image/svg+xml")
    ubl = write_ubl(doc) if args.pdfa else None

    def render() -> bytes:
        return render_pdf(
            doc, branding, "nl", review_url="https://pay.example/i/abc", attach_ubl=ubl
        )

    for _ in range(args.warmup):
        render()
    rss_before = _rss_mb()
    walls = []
    cpu_start = time.process_time()
    for _ in range(args.n):
        start = time.perf_counter()
        render()
        walls.append((time.perf_counter() - start) * 1000)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / args.n
    growth = (_rss_mb() - rss_before) * 1000 / args.n

    walls.sort()
    p95 = walls[min(len(walls) - 1, round(0.95 * (len(walls) - 1)))]
    print(f"BENCH pdf_render_median_ms {statistics.median(walls):.1f} ms")
    print(f"BENCH pdf_render_p95_ms {p95:.1f} ms")
    print(f"BENCH pdf_render_cpu_ms_per_doc {cpu_ms:.1f} ms")
    print(f"BENCH pdf_render_rss_growth_mb_per_1000 {growth:.2f} MB")


if __name__ == "__main__":
    main()
