"""Benchmark: validate a 10-line invoice with :func:`einvoice.validate` (XSD, CEN, Peppol).

Needs the rules folder: ``EINVOICE_RULES_DIR``, else ``../shared/einvoice-rules``
next to the repository. Run from the repository root::

    .venv/bin/python bench/validate.py          # 200 validations after 5 warm-up ones
    .venv/bin/python bench/validate.py -n 1000

Goal: at most 25 ms per document after warm-up. Prints ``BENCH <name> <value>
<unit>`` lines: the first validation (which compiles the stylesheets), then
median and p95 wall time and CPU time per document after the warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from pdf_render import ten_line_invoice  # bench/ is on sys.path when run as a script

from einvoice import validate, write_ubl

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "shared" / "einvoice-rules"


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the BENCH lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="measured validations (default 200)")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)

    rules_dir = Path(os.environ.get("EINVOICE_RULES_DIR") or DEFAULT_RULES)
    if not rules_dir.is_dir():
        sys.exit(f"no rules folder at {rules_dir}; set EINVOICE_RULES_DIR")
    xml = write_ubl(ten_line_invoice(), rules_dir)

    start = time.perf_counter()
    findings = validate(xml, rules_dir)
    first_ms = (time.perf_counter() - start) * 1000
    if findings.fatal or not {"xsd", "cen", "peppol"} <= set(findings.ran):
        # Timing a validation that stopped early or found errors would flatter the figure.
        sys.exit(f"the benchmark document must pass all rules: {findings.fatal} {findings.ran}")
    for _ in range(args.warmup):
        validate(xml, rules_dir)
    walls = []
    cpu_start = time.process_time()
    for _ in range(args.n):
        start = time.perf_counter()
        validate(xml, rules_dir)
        walls.append((time.perf_counter() - start) * 1000)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / args.n
    walls.sort()
    p95 = walls[min(len(walls) - 1, round(0.95 * (len(walls) - 1)))]
    print(f"BENCH validate_first_ms {first_ms:.0f} ms")
    print(f"BENCH validate_median_ms {statistics.median(walls):.1f} ms")
    print(f"BENCH validate_p95_ms {p95:.1f} ms")
    print(f"BENCH validate_cpu_ms_per_doc {cpu_ms:.1f} ms")


if __name__ == "__main__":
    main()
