"""Benchmark: write the UBL 2.1 XML of a 10-line invoice with :func:`einvoice.write_ubl`.

Run from the repository root (one process, so one core)::

    .venv/bin/python bench/ubl_write.py              # about 3 s of writing after warm-up
    .venv/bin/python bench/ubl_write.py --seconds 10
    EINVOICE_RULES_DIR=../shared/einvoice-rules .venv/bin/python bench/ubl_write.py
        # with the official code lists checked while writing, as issuing does

Goal: at least 2,000 documents per second. Prints ``BENCH <name> <value> <unit>``
lines: documents per second (wall), CPU milliseconds per document and the
size of one document.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from pdf_render import ten_line_invoice  # bench/ is on sys.path when run as a script

from einvoice import write_ubl


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the BENCH lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time (default 3)")
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args(argv)

    rules = os.environ.get("EINVOICE_RULES_DIR")
    rules_dir = Path(rules) if rules else None
    # The document is computed once, as issuing computes before it writes; writing
    # still runs every rule check, which is part of what is measured.
    doc = ten_line_invoice()
    for _ in range(args.warmup):
        xml = write_ubl(doc, rules_dir)
    written = 0
    cpu_start, start = time.process_time(), time.perf_counter()
    deadline = start + args.seconds
    while time.perf_counter() < deadline:
        for _ in range(50):  # reading the clock per document would be measured too
            write_ubl(doc, rules_dir)
        written += 50
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(f"BENCH ubl_write_docs_per_s {written / wall:.0f} docs/s")
    print(f"BENCH ubl_write_cpu_ms_per_doc {cpu * 1000 / written:.3f} ms")
    print(f"BENCH ubl_write_bytes_per_doc {len(xml)} bytes")
    print(f"BENCH ubl_write_code_lists {1 if rules_dir else 0} bool")


if __name__ == "__main__":
    main()
