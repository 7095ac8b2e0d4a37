"""Bad input to every importer (JSON, CSV, UBL), property-based: whatever the file, it is
read or refused with problems a clerk can act on, never a crash; what is accepted is
stored exactly as written (SQL metacharacters, markup and formulas are only text)."""

from __future__ import annotations

import csv
import io
import json

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from distribution.documents import DatabaseStore
from portal.imports.csv_format import read_csv
from portal.imports.formats import read_documents
from portal.imports.json_format import read_json
from portal.imports.problems import ImportRejected
from portal.imports.service import import_documents
from portal.imports.ubl_format import read_ubl_file
from portal.models import Customer, Invoice, InvoiceLine
from tests.factories import invoice_json

# Strings that attack what reads them later: HTML, SQL, spreadsheets, mail headers, paths.
HOSTILE = [
    "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "javascript:alert(1)",
    "{{ 7*7 }}", "{% raw %}", "'; DROP TABLE invoices; --", "1' OR '1'='1", "\\'; --",
    "=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR",
    "Name\r\nBcc: victim@example.com", "../../etc/passwd", "%00", "\u202etxt.exe", "💸€日本",
]
hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=60))


def _answer(reader, data: bytes, file: str = "f") -> list | ImportRejected:
    """The reader's documents, or its refusal; anything else fails the test."""
    try:
        return reader(data, file)
    except ImportRejected as refused:
        assert refused.problems and all(str(p) for p in refused.problems)
        return refused


@given(st.binary(max_size=3000), st.sampled_from(["x.json", "x.csv", "x.xml", "x.txt"]))
def test_any_file_is_read_or_refused(tmp_path_factory, data, name):
    path = tmp_path_factory.mktemp("bad") / name
    path.write_bytes(data)
    try:
        read_documents(path)
    except ImportRejected as refused:
        assert refused.problems


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4), max_leaves=30)


@given(json_values)
def test_any_json_value_is_read_or_refused(value):
    _answer(read_json, json.dumps(value).encode())


@given(st.dictionaries(st.sampled_from(sorted(invoice_json())), json_values, max_size=3))
def test_an_invoice_with_fields_of_any_type_is_read_or_refused(overrides):
    _answer(read_json, json.dumps({**invoice_json("INV-1", "C1"), **overrides}).encode())


@pytest.mark.parametrize("data", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"number": 1' + b"0" * 5000 + b"}",
    b'{"number": NaN, "issue_date": Infinity}',
    b"\xff\xfe{\x00}\x00",
    "[{}]".encode("utf-16"),
    b'{"number": "INV-1\x00"}',
    b'[' + b'{},' * 2_000 + b'{}]',
])
def test_deep_huge_and_odd_json_is_refused(data):
    assert isinstance(_answer(read_json, data), ImportRejected)


CSV_HEADER = ["invoice_number", "issue_date", "due_date", "currency", "customer_number",
              "customer_name", "buyer_reference", "note", "item_name", "quantity", "unit_code",
              "net_price", "vat_category", "vat_rate"]
CSV_ROW = ["INV-1", "2026-10-01", "2026-10-31", "EUR", "C1", "Alice", "REF-1", "", "Fibre",
           "1", "C62", "41.32", "S", "21"]


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([CSV_HEADER, *rows])
    return out.getvalue().encode("utf-8", "surrogatepass")


@given(st.text(max_size=1500))
def test_any_csv_text_is_read_or_refused(text):
    _answer(read_csv, ("invoice_number,issue_date\n" + text).encode("utf-8", "surrogatepass"))


@given(st.lists(st.tuples(st.integers(0, len(CSV_HEADER) - 1), hostile_text), max_size=4))
def test_csv_rows_with_any_cells_are_read_or_refused(changes):
    row = list(CSV_ROW)
    for index, value in changes:
        row[index] = value
    _answer(read_csv, _csv([row]))


@pytest.mark.parametrize("cell", ["x" * 200_000, "\x00", '"unterminated', "a\rb\nc"])
def test_huge_and_broken_csv_cells_are_refused_or_read(cell):
    _answer(read_csv, _csv([[*CSV_ROW[:7], cell, *CSV_ROW[8:]]]))


@pytest.fixture(scope="module")
def ubl_example() -> bytes:
    from tests.portal.imports.conftest import EXAMPLES

    return (EXAMPLES / "base-example.xml").read_bytes()


@given(st.binary(max_size=2000))
def test_any_xml_file_is_read_or_refused(data):
    _answer(read_ubl_file, b"<?xml version='1.0'?>" + data)


@given(hostile_text)
def test_hostile_text_in_a_ubl_buyer_is_read_or_refused(ubl_example, text):
    from xml.sax.saxutils import escape

    data = ubl_example.replace(b"<cbc:Name>BuyerTradingName AS</cbc:Name>",
                               f"<cbc:Name>{escape(text)}</cbc:Name>".encode(
                                   "utf-8", "surrogatepass"), 1)
    _answer(read_ubl_file, data)


# Stored as written


TEXT_FIELDS = ["customer.name", "buyer_reference", "note", "payment_terms", "lines.item_name",
               "lines.description", "order_reference"]


def _with(document: dict, field: str, value: str) -> dict:
    if field.startswith("customer."):
        document["customer"] = {**document["customer"], "number": "C-NEW",
                                "address": {"country_code": "BE"}, field.split(".")[1]: value}
    elif field.startswith("lines."):
        document["lines"][0][field.split(".")[1]] = value
    else:
        document[field] = value
    return document


def _stored(session, field: str):
    invoice = session.scalars(sa.select(Invoice).where(Invoice.number == "INV-H")).one()
    if field.startswith("customer."):
        return session.get(Customer, invoice.customer_id).name
    if field.startswith("lines."):
        line = session.scalars(sa.select(InvoiceLine).where(
            InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)).first()
        return getattr(line, field.split(".")[1])
    return getattr(invoice, field)


@given(field=st.sampled_from(TEXT_FIELDS), value=hostile_text)
def test_hostile_text_is_stored_exactly_or_refused(session, seller, field, value):
    document = _with(invoice_json("INV-H", "C1"), field, value)
    data = json.dumps([document]).encode("utf-8", "surrogatepass")
    savepoint = session.begin_nested()
    try:
        documents = _answer(read_json, data)
        if isinstance(documents, ImportRejected):
            return
        try:
            import_documents(session, documents, file="f", store=DatabaseStore())
        except ImportRejected as refused:
            assert refused.problems
            return
        stored = _stored(session, field)
        assert stored == (value.strip() or None) or stored == value
    finally:
        savepoint.rollback()
        session.expire_all()
    # The tables are still there and whole after every example.
    assert session.scalar(sa.select(sa.func.count()).select_from(Invoice)) is not None


@pytest.mark.parametrize("value", [v for v in HOSTILE if v.strip() == v and "\r" not in v])
@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_hostile_text_is_accepted_and_stored_as_written(session, seller, field, value):
    document = _with(invoice_json("INV-H", "C1"), field, value)
    import_documents(session, read_json(json.dumps([document]).encode(), "f"), file="f",
                     store=DatabaseStore())
    assert _stored(session, field) == value


@pytest.mark.parametrize("name", ["Alice\x08", "Alice\x1b[31m"])  # NUL: PostgreSQL refuses
def test_a_customer_whose_name_xml_cannot_carry_is_refused_when_issuing(session, seller, name):
    from tests.factories import make_customer

    make_customer(session, seller, "C-CTRL", name=name)  # e.g. changed through another door
    documents = read_json(json.dumps([invoice_json("INV-CTRL", "C-CTRL")]).encode(), "f")
    with pytest.raises(ImportRejected) as refused:
        import_documents(session, documents, file="f", store=DatabaseStore())
    assert "character XML cannot carry" in str(refused.value.problems[0])


@pytest.mark.parametrize("name", ["[", "a[b", "]", "x]["])
def test_unknown_fields_named_with_brackets_are_refused_by_name(name):
    document = invoice_json("INV-1", "C1")
    document["lines"][0][name] = None
    refused = _answer(read_json, json.dumps(document).encode())
    assert isinstance(refused, ImportRejected)
    assert any(p.field == f"lines[1].{name}" for p in refused.problems)
