"""``herald invoices import``: per-file lines, the summary, exit codes, progress, dry runs."""

from __future__ import annotations

import dataclasses

import pytest

from tests.factories import invoice_json
from tests.portal.imports.conftest import row_counts


def test_good_file_prints_its_line_and_the_summary(seller, write_json, run_import):
    path = write_json([invoice_json("INV-1"), invoice_json("INV-2")])

    result = run_import(path)

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [f"{path}: created 2",
                                          "Summary: created 2, unchanged 0, rejected 0."]
    assert result.stderr == ""


def test_good_and_bad_files_import_the_good_one_and_exit_1(session, seller, write_json,
                                                           run_import):
    good = write_json([invoice_json("INV-1")], name="good.json")
    bad = write_json([invoice_json("INV-2"), invoice_json("INV-3", currency="euro")],
                     name="bad.json")
    before = row_counts(session)

    result = run_import(good, bad)

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"{good}: created 1",
                                          "Summary: created 1, unchanged 0, rejected 1."]
    assert result.stderr.splitlines() == [
        f"{bad}: refused, nothing imported (1 problem):",
        f"  {bad}, document 2 (INV-3), field 'currency': 'euro' has the wrong form; "
        "expected ISO 4217 code in capitals, e.g. EUR"]
    assert row_counts(session)["invoices"] == before["invoices"] + 1


def test_rejected_counts_each_refused_document(seller, write_json, run_import):
    path = write_json([invoice_json("INV-1", currency="euro"),
                       invoice_json("INV-2", issue_date="tomorrow"), invoice_json("INV-3")])

    result = run_import(path)

    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == "Summary: created 0, unchanged 0, rejected 2."


def test_missing_file_is_a_usage_error(run_import, tmp_path):
    result = run_import(tmp_path / "nothing.json")

    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_unknown_kind_of_file_is_refused(seller, write_bytes, run_import):
    path = write_bytes("notes.txt", "hello")

    result = run_import(path)

    assert result.exit_code == 1
    assert result.stderr.splitlines()[1] == (
        f"  {path}: is not JSON, CSV or UBL XML; Herald reads .json, .csv and .xml files")


def test_dry_run_writes_nothing_and_says_would_create(session, seller, write_json, run_import):
    path = write_json([invoice_json("INV-1"),
                       invoice_json("INV-2") | {"customer": {"number": "C2", "name": "Acme",
                                                             "address": {"country_code": "BE"}}}])
    before = row_counts(session)

    result = run_import(path, options=("--dry-run",))

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"{path}: would create 2",
                                          "Summary: would create 2, unchanged 0, rejected 0."]
    assert row_counts(session) == before
    # and the real import afterwards still creates both
    assert run_import(path).stdout.splitlines()[0] == f"{path}: created 2"


def test_dry_run_reports_problems_like_the_real_import(seller, write_json, run_import):
    path = write_json(invoice_json("INV-1", currency="euro"))

    result = run_import(path, options=("--dry-run",))

    assert result.exit_code == 1
    assert f"{path}, document 1 (INV-1), field 'currency'" in result.stderr


@pytest.fixture
def progress_threshold(app, monkeypatch):
    """Set the app's IMPORT_PROGRESS_THRESHOLD for one test."""
    def set_threshold(value: int) -> None:
        settings = dataclasses.replace(app.config["HERALD"], import_progress_threshold=value)
        monkeypatch.setitem(app.config, "HERALD", settings)
    return set_threshold


def test_progress_bar_from_the_threshold_on(seller, write_json, run_import,
                                            progress_threshold):
    progress_threshold(2)
    small = write_json([invoice_json("INV-1")], name="small.json")
    large = write_json([invoice_json("INV-2"), invoice_json("INV-3")], name="large.json")

    result = run_import(small, large)

    assert result.exit_code == 0, result.output
    assert f"Importing {large}" in result.stderr
    assert f"Importing {small}" not in result.stderr
    # the bar goes to stderr, so stdout stays a clean report
    assert result.stdout.splitlines() == [f"{small}: created 1", f"{large}: created 2",
                                          "Summary: created 3, unchanged 0, rejected 0."]


def test_default_threshold_shows_no_bar_for_a_small_file(app, seller, write_json, run_import):
    assert app.config["HERALD"].import_progress_threshold == 200
    result = run_import(write_json([invoice_json("INV-1"), invoice_json("INV-2")]))

    assert result.exit_code == 0
    assert "Importing" not in result.output
