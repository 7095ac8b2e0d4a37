"""The examples in docs/ import as the documentation says, so the docs cannot rot."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from portal.imports.json_format import schema_validator
from tests.portal.imports.conftest import invoice, row_counts

DOCS = Path(__file__).resolve().parents[3] / "docs"
GUIDE = DOCS / "import-format.md"


def test_json_example_imports_with_the_amounts_the_guide_gives(session, seller, run_import):
    path = DOCS / "examples" / "invoices.json"

    result = run_import(path)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"{path}: created 2"
    # fibre 41.32 at 21 % -> 8.68; electricity 229 x 0.289 = 66.18 - 5.00 = 61.18 at 6 % -> 3.67
    assert invoice(session, "2026-000101").payable_amount == Decimal("114.85")
    assert invoice(session, "2026-000101").account.number == "ACC-1001-1"
    # 4.13 + 21 % (0.87)
    assert invoice(session, "2026-CN-0007").payable_amount == Decimal("5.00")


def test_csv_example_imports_with_the_amounts_the_guide_gives(session, seller, run_import):
    path = DOCS / "examples" / "invoices.csv"

    result = run_import(path)

    assert result.exit_code == 0, result.output
    # 41.32 at 21 % (8.68) + 180 x 0.289 = 52.02 at 6 % (3.12)
    assert invoice(session, "2026-000102").payable_amount == Decimal("105.14")
    # 89.00 - 10.00 + 2 x 45.00 + 25.00 = 194.00, 21 % = 40.74
    assert invoice(session, "2026-000103").payable_amount == Decimal("234.74")
    assert invoice(session, "2026-000103").customer.vat_id == "BE0987654321"


def test_both_examples_together_and_again(session, seller, run_import):
    examples = (DOCS / "examples" / "invoices.json", DOCS / "examples" / "invoices.csv")
    assert run_import(*examples).stdout.splitlines()[-1] == (
        "Summary: created 4, unchanged 0, rejected 0.")
    before = row_counts(session)

    again = run_import(*examples)

    assert again.stdout.splitlines()[-1] == "Summary: created 0, unchanged 4, rejected 0."
    assert row_counts(session) == before


def test_schema_beside_the_guide_is_the_one_the_importer_uses():
    published = DOCS / "import-format.schema.json"
    assert published.is_symlink()
    assert json.loads(published.read_text()) == schema_validator().schema
    Draft202012Validator.check_schema(schema_validator().schema)


@pytest.mark.parametrize("name", ["invoices.json"])
def test_json_example_is_valid_against_the_schema(name):
    data = json.loads((DOCS / "examples" / name).read_text())
    assert list(schema_validator().iter_errors(data)) == []


def _json_blocks(text: str) -> list[str]:
    return re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)


def test_json_in_the_guide_is_valid_against_the_schema():
    blocks = _json_blocks(GUIDE.read_text())
    assert len(blocks) >= 3
    for block in blocks:
        assert list(schema_validator().iter_errors(json.loads(block))) == [], block


def test_guide_names_every_csv_column_and_json_field():
    from portal.imports.csv_format import KNOWN_COLUMNS, REQUIRED_COLUMNS

    text = GUIDE.read_text()
    for column in KNOWN_COLUMNS:
        assert f"`{column}`" in text, column
    required_section = text.split("Required columns", 1)[1].split("\n\n", 1)[0]
    for column in REQUIRED_COLUMNS:
        assert f"`{column}`" in required_section, column
    document = schema_validator().schema["$defs"]["document"]["properties"]
    for field in document:
        assert f"`{field}`" in text, field


def test_json_in_the_guide_imports_with_the_amounts_it_gives(session, seller, write_json,
                                                             run_import):
    documents = [json.loads(block) for block in _json_blocks(GUIDE.read_text())]

    result = run_import(write_json(documents))

    assert result.exit_code == 0, result.output
    assert invoice(session, "2026-000101").payable_amount == Decimal("120.15")
    assert invoice(session, "2026-CN-0007").payable_amount == Decimal("5.00")
    assert invoice(session, "2026-000110").tax_exclusive_amount == Decimal("63.68")
