"""What import_documents promises: all of a file or nothing, and nothing twice."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from distribution.events import Event
from portal.imports.formats import read_documents
from portal.imports.problems import ImportRejected
from portal.imports.service import import_documents
from portal.models import Account
from tests.factories import invoice_json, make_customer
from tests.portal.imports.conftest import problem_lines, row_counts

NEW_CUSTOMER = {"number": "C2", "name": "Acme BV", "address": {"country_code": "BE"}}


def test_file_with_one_bad_document_writes_nothing(session, seller, write_json, run_import):
    path = write_json([
        invoice_json("INV-1"),
        invoice_json("INV-2") | {"customer": NEW_CUSTOMER},  # would create a customer
        invoice_json("INV-3", lines=[{"item_name": "Fibre", "quantity": "1", "unit_code": "C62",
                                      "net_price": "10", "vat_category": "S",
                                      "vat_rate": "0"}]),
    ])
    before = row_counts(session)

    result = run_import(path)

    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path}: refused, nothing imported (1 problem):")
    assert result.stdout.strip() == "Summary: created 0, unchanged 0, rejected 1."
    assert row_counts(session) == before


def test_importing_the_same_file_twice_reports_unchanged_and_writes_nothing(
        session, seller, write_json, run_import):
    path = write_json([invoice_json("INV-1"), invoice_json("INV-2") | {"customer": NEW_CUSTOMER}])
    before = row_counts(session)

    first = run_import(path)
    after_first = row_counts(session)
    second = run_import(path)

    assert first.exit_code == 0, first.output
    # two invoices, one new customer; for each invoice an import and an issue event,
    # and one for the customer
    assert after_first == {"invoices": before["invoices"] + 2,
                           "customers": before["customers"] + 1,
                           "events": before["events"] + 5}
    assert second.exit_code == 0, second.output
    assert second.stdout.splitlines() == [
        f"{path}: created 0, unchanged 2 (already imported: INV-1, INV-2)",
        "Summary: created 0, unchanged 2, rejected 0."]
    assert row_counts(session) == after_first


def test_events_record_what_was_imported(session, seller, write_json, run_import):
    path = write_json(invoice_json("INV-1"))

    run_import(path)

    event = session.scalars(sa.select(Event).where(Event.kind == "invoice.imported")).one()
    assert event.subject_key == f"{seller.id}:INV-1"
    assert event.actor == "cli:import"
    assert event.payload["payable_amount"] == "120.15"
    assert event.payload["file"] == str(path)


def test_duplicate_number_in_one_file_is_refused(session, seller, write_json, run_import):
    path = write_json([invoice_json("INV-1"), invoice_json("INV-1", buyer_reference="X")])

    result = run_import(path)

    assert result.exit_code == 1
    assert problem_lines(result) == [
        f"{path}, document 2 (INV-1), field 'number': INV-1 appears twice in this file (also at "
        "document 1 (INV-1)); each invoice number is used once"]


def test_same_number_with_different_content_is_refused(session, seller, write_json,
                                                       run_import):
    run_import(write_json(invoice_json("INV-1"), name="first.json"))
    before = row_counts(session)
    changed = write_json(invoice_json("INV-1", due_date="2026-11-30"), name="second.json")

    result = run_import(changed)

    assert result.exit_code == 1
    [problem] = problem_lines(result)
    assert problem.startswith(f"{changed}, document 1 (INV-1), field 'number': INV-1 was "
                              "imported before with different content")
    assert row_counts(session) == before


def test_account_of_another_customer_is_refused(session, seller, write_json, run_import):
    other = make_customer(session, seller, "C5")
    session.add(Account(organisation_id=seller.id, number="ACC-5", customer=other))
    session.flush()
    path = write_json(invoice_json("INV-1", account="ACC-5"))

    result = run_import(path)

    assert result.exit_code == 1
    assert problem_lines(result) == [
        f"{path}, document 1 (INV-1), field 'account': account ACC-5 belongs to another "
        "customer (C5), not to C1"]


def test_account_is_created_for_the_customer(session, seller, write_json, run_import):
    path = write_json([invoice_json("INV-1", account="ACC-1"),
                       invoice_json("INV-2", account="ACC-1")])

    result = run_import(path)

    assert result.exit_code == 0, result.output
    account = session.scalars(sa.select(Account).where(Account.number == "ACC-1")).one()
    assert account.customer.number == "C1"


def test_service_reports_progress_per_document_and_never_commits(session, seller, write_json):
    path = write_json([invoice_json("INV-1"), invoice_json("INV-2"), invoice_json("INV-3")])
    steps: list[int] = []

    result = import_documents(session, read_documents(path), file=str(path),
                              progress=steps.append)

    assert steps == [1, 1, 1]
    assert result.created == ["INV-1", "INV-2", "INV-3"]
    assert session.in_transaction()


def test_service_raises_with_every_problem_of_the_file(session, seller, write_json):
    path = write_json([invoice_json("INV-1", account="ACC-1"),
                       invoice_json("INV-2", account="ACC-1") | {"customer": NEW_CUSTOMER},
                       invoice_json("INV-3", seller_vat_id="XX1")])

    with pytest.raises(ImportRejected) as raised:
        import_documents(session, read_documents(path), file=str(path))

    assert [(p.location, p.field) for p in raised.value.problems] == [
        ("document 2 (INV-2)", "account"), ("document 3 (INV-3)", "seller_vat_id")]
