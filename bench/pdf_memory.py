"""Benchmark: memory of a rendering worker over many different documents (default 10,000).

A worker renders each issued invoice once: different numbers, customers, line
counts, languages and QR codes, PDF/A-3b with the UBL attached. Any cache keyed
on content (fonts, images, stylesheets, templates) that grows per document shows
here as resident memory that keeps rising. Run from the repository root::

    .venv/bin/python bench/pdf_memory.py                 # 10,000 documents, RSS every 1,000
    .venv/bin/python bench/pdf_memory.py -n 2000 --every 250
    .venv/bin/python bench/pdf_memory.py --pool 1000      # as herald worker renders

Prints a progress line ``rss after N documents: X MB`` at each sample (flushed,
so an interrupted run still shows its trend) and at the end ``BENCH <name>
<value> <unit>`` lines: RSS after warm-up and at the end, growth per 1,000
documents over the second half of the run (the steady state; the first
documents still fill Pango's and fontconfig's caches), peak RSS, CPU per
document.

Each sample also shows what the growth is made of: ``python blocks`` counts
the objects Python's allocator holds (``sys.getallocatedblocks``; a leak of
ours, WeasyPrint's or a cache keyed on content shows here), ``malloc in use``
what glibc's malloc has handed out and not had back (C libraries such as
Pango, HarfBuzz and fontconfig included: a leak in them shows here), and with
``--trim`` (the default) glibc's ``malloc_trim(0)`` runs after the sample,
returning freed heap pages to the system; ``rss trimmed`` is RSS after it.
RSS that rises while blocks stay flat and that falls back when trimmed is
memory the C allocator keeps for reuse, not memory still in use.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
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


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _malloc_in_use_mb() -> float | None:
    """Bytes glibc's malloc has handed out and not had back (C libraries and Python alike)."""
    try:
        mallinfo2 = ctypes.CDLL(ctypes.util.find_library("c")).mallinfo2
    except (OSError, AttributeError, TypeError):
        return None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20


def _malloc_trim() -> bool:
    """Ask glibc to return freed heap memory to the system; False where unavailable."""
    name = ctypes.util.find_library("c")
    try:
        return bool(ctypes.CDLL(name).malloc_trim(0)) or True
    except (OSError, AttributeError, TypeError):
        return False


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


_BRANDING: list[Branding] = []


def render_index(index: int) -> bytes:
    """The ``index``-th document's PDF (module level: a render pool's child can call it)."""
    if not _BRANDING:
        _BRANDING.append(Branding(seller_name="Herald Bench", logo=LOGO,
                                  logo_mime_type="image/svg+xml"))
    doc = document(index)
    return render_pdf(doc, _BRANDING[0], LANGUAGES[index % 3],
                      review_url=f"https://pay.example/i/{index:x}",
                      status=STATUSES[index % 4], attach_ubl=write_ubl(doc))


def pooled(args: argparse.Namespace) -> None:
    """The worker as ``herald worker`` runs it: renders in a child replaced every ``--pool``.

    What counts is the worker's whole footprint, its own RSS plus its rendering
    child's, sampled after every document; each sample window reports its highest.
    """
    import psutil

    from portal.render_pool import RenderPool

    pool = RenderPool(documents_per_process=args.pool, processes=1)
    me = psutil.Process()

    def total_mb() -> float:
        rss = me.memory_info().rss
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                rss += child.memory_info().rss
        return rss / 2**20

    wall = 0.0
    for index in range(args.warmup):
        pool.call(render_index, 1_000_000 + index)
    windows, high = [], 0.0
    for index in range(1, args.n + 1):
        started = time.perf_counter()
        pool.call(render_index, index)
        wall += time.perf_counter() - started
        high = max(high, total_mb())
        if index % args.every == 0 or index == args.n:
            windows.append((index, high))
            print(f"worker + child, highest up to {index} documents: {high:.1f} MB "
                  f"(worker alone {me.memory_info().rss / 2**20:.1f} MB)", flush=True)
            high = 0.0
    pool.close()
    half = [window for window in windows if window[0] >= args.n // 2]
    (first_n, first_mb), (last_n, last_mb) = half[0], half[-1]
    slope = (last_mb - first_mb) * 1000 / (last_n - first_n) if last_n > first_n else 0.0
    print(f"BENCH pdf_memory_pool_documents {args.n} documents")
    print(f"BENCH pdf_memory_pool_documents_per_process {args.pool} documents")
    print(f"BENCH pdf_memory_pool_highest_total_mb {max(mb for _, mb in windows):.1f} MB")
    print(f"BENCH pdf_memory_pool_growth_second_half_mb_per_1000 {slope:.2f} MB")
    print(f"BENCH pdf_memory_pool_wall_ms_per_doc {wall * 1000 / args.n:.1f} ms")


def main(argv: list[str] | None = None) -> None:
    """Render the documents, sampling RSS, and print the BENCH lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="documents (default 10,000)")
    parser.add_argument("--every", type=int, default=1_000, help="RSS sample interval")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--no-trim", dest="trim", action="store_false",
                        help="do not call malloc_trim after each sample")
    parser.add_argument("--pool", type=int, default=0, metavar="N",
                        help="render as herald worker does, in a child process replaced "
                             "every N documents, and measure worker plus child")
    args = parser.parse_args(argv)
    if args.pool:
        pooled(args)
        return
    render = render_index

    for index in range(args.warmup):
        render(1_000_000 + index)
    gc.collect()
    start_rss = _rss_mb()
    start_blocks = sys.getallocatedblocks()
    print(f"rss after warm-up ({args.warmup} documents): {start_rss:.1f} MB, "
          f"python blocks {start_blocks}", flush=True)
    samples = [(0, start_rss)]
    trimmed = []
    cpu = 0.0
    for index in range(1, args.n + 1):
        started = time.process_time()
        render(index)
        cpu += time.process_time() - started
        if index % args.every == 0 or index == args.n:
            rss = _rss_mb()
            gc.collect()  # count live objects, not cycles the collector has yet to free
            blocks = sys.getallocatedblocks()
            samples.append((index, rss))
            line = f"rss after {index} documents: {rss:.1f} MB, python blocks {blocks}"
            in_use = _malloc_in_use_mb()
            if in_use is not None:
                line += f", malloc in use {in_use:.1f} MB"
            if args.trim and _malloc_trim():
                trimmed.append((index, _rss_mb()))
                line += f", rss trimmed {trimmed[-1][1]:.1f} MB"
            print(line, flush=True)
    cpu_ms = cpu * 1000 / args.n
    gc.collect()
    end_blocks = sys.getallocatedblocks()

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
    print(f"BENCH pdf_memory_python_blocks_growth {end_blocks - start_blocks} blocks")
    if trimmed:
        low = min(rss for _, rss in trimmed)
        high = max(rss for _, rss in trimmed)
        print(f"BENCH pdf_memory_rss_trimmed_range_mb {high - low:.1f} MB")
        print(f"BENCH pdf_memory_rss_trimmed_end_mb {trimmed[-1][1]:.1f} MB")


if __name__ == "__main__":
    main()
