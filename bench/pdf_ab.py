"""Benchmark: an older invoice page and the current one, each printed by WeasyPrint and Chromium.

For judging a template change on a busy machine. The older page is the HTML and
stylesheet of an ``einvoice`` package extracted from an earlier commit; its HTML
is made in a subprocess (two ``einvoice`` packages cannot share one process),
for the same 10-line invoice as ``bench/pdf_vs_chromium.py``. Both pages are
then printed in this process, as :func:`einvoice.pdf.print_html` prints (the
current user-agent stylesheet and font configuration; the older stylesheet
parsed once), and by one warm Chromium, in turns that alternate in order every
round, so that a busy neighbour hurts all four alike. CPU is counted as in
``pdf_vs_chromium.py``. Run from the repository root::

    mkdir -p /tmp/old && git archive <commit> einvoice | tar -x -C /tmp/old
    .venv/bin/python bench/pdf_ab.py /tmp/old -n 15 --rounds 6

Prints ``BENCH <name> <value> <unit>`` lines: CPU per document of each engine
on each page, and the ratios. A template change should lower WeasyPrint's CPU
without raising Chromium's (the comparison is only fair if the new page is not
harder for Chromium to print).
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import psutil
from pdf_render import LOGO, ten_line_invoice  # bench/ is on sys.path when run as a script
from pdf_vs_chromium import CHROMIUM_ARGS, REVIEW_URL, _chromium_tree, _cpu_by_pid, _cpu_used
from playwright.sync_api import sync_playwright

from einvoice import Branding
from einvoice.pdf import render_html
from einvoice.pdf.render import _engine, _page_class

# The older package is imported before pdf_render, which puts this checkout first on
# sys.path: einvoice is then already the older one.
_OLD_HTML = """
import sys
sys.path.insert(0, sys.argv[1])
import einvoice
assert einvoice.__file__.startswith(sys.argv[1]), einvoice.__file__
sys.path.insert(1, sys.argv[2])
from pdf_render import LOGO, ten_line_invoice
from einvoice import Branding
from einvoice.pdf import render_html
branding = Branding(seller_name="Herald Bench", logo=LOGO, logo_mime_type="image/svg+xml")
sys.stdout.write(render_html(ten_line_invoice(), branding, "nl", review_url=sys.argv[3]))
"""


def _old_page(old: Path) -> tuple[str, str]:
    bench = Path(__file__).resolve().parent
    command = [sys.executable, "-c", _OLD_HTML, str(old.resolve()), str(bench), REVIEW_URL]
    html = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    css = (old / "einvoice" / "pdf" / "templates" / "invoice.css").read_text("utf-8")
    return html, css


def main(argv: list[str] | None = None) -> None:
    """Print both pages with both engines in alternating turns and print the BENCH lines."""
    import weasyprint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="folder holding the older einvoice package")
    parser.add_argument("-n", type=int, default=15, help="documents per turn")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)

    fonts, _, fetcher = _engine()
    page_class = _page_class()
    branding = Branding(seller_name="Herald Bench", logo=LOGO, logo_mime_type="image/svg+xml")
    new_html = render_html(ten_line_invoice(), branding, "nl", review_url=REVIEW_URL)
    new_css = (resources.files("einvoice.pdf") / "templates" / "invoice.css").read_text("utf-8")
    pages = {}
    for name, (html, css) in (("old", _old_page(args.old)), ("new", (new_html, new_css))):
        stylesheet = weasyprint.CSS(string=css, font_config=fonts, url_fetcher=fetcher)
        pages[name] = (html, stylesheet, html.replace("<head>", f"<head>\n<style>{css}</style>", 1))

    def weasyprint_once(name: str) -> bytes:
        html, stylesheet, _ = pages[name]
        document = page_class(html, fetcher)
        gc.disable()  # as einvoice.pdf.render does around a render
        try:
            return document.write_pdf(stylesheets=[stylesheet], font_config=fonts)
        finally:
            gc.enable()
            gc.collect(0)

    me = psutil.Process(os.getpid())
    turns = [("weasyprint", "old"), ("chromium", "old"), ("weasyprint", "new"),
             ("chromium", "new")]
    cpu = dict.fromkeys(turns, 0.0)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        tab = browser.new_page()

        def chromium_once(name: str) -> bytes:
            tab.set_content(pages[name][2], wait_until="load")
            return tab.pdf(format="A4", print_background=True, prefer_css_page_size=True)

        for name in pages:
            for _ in range(5):
                weasyprint_once(name)
                chromium_once(name)
        for number in range(args.rounds):
            for engine, name in turns if number % 2 == 0 else turns[::-1]:
                if engine == "weasyprint":
                    start = time.process_time()
                    for _ in range(args.n):
                        weasyprint_once(name)
                    cpu[engine, name] += time.process_time() - start
                else:
                    before = _cpu_by_pid(_chromium_tree(me))
                    for _ in range(args.n):
                        chromium_once(name)
                    cpu[engine, name] += _cpu_used(before, _cpu_by_pid(_chromium_tree(me)))
        browser.close()

    ms = {turn: seconds * 1000 / (args.n * args.rounds) for turn, seconds in cpu.items()}
    for (engine, name), value in ms.items():
        print(f"BENCH {engine}_{name}_cpu_ms_per_doc {value:.1f} ms")
    for name in pages:
        ratio = ms["weasyprint", name] / ms["chromium", name]
        print(f"BENCH pdf_cpu_ratio_{name}_page {ratio:.2f} ratio")
    # The new page printed by WeasyPrint against the old page printed by Chromium: the
    # ratio a change reaches even if it made Chromium's page dearer.
    print(f"BENCH pdf_cpu_ratio_new_weasyprint_over_old_chromium "
          f"{ms['weasyprint', 'new'] / ms['chromium', 'old']:.2f} ratio")
    print(f"BENCH weasyprint_new_over_old {ms['weasyprint', 'new'] / ms['weasyprint', 'old']:.3f} "
          "ratio")


if __name__ == "__main__":
    main()
