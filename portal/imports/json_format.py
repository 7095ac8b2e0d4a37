"""Reads Herald's JSON import format (docs/import-format.md)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from portal.imports.documents import ImportedDocument
from portal.imports.mapping import document_from_mapping
from portal.imports.problems import ImportRejected, Locator, Problem

SCHEMA_FILE = "invoice-import.schema.json"


@cache
def schema_validator() -> Draft202012Validator:
    """The validator of the published JSON Schema (the same file the docs link to)."""
    schema = json.loads(resources.files("portal.imports").joinpath(SCHEMA_FILE).read_text())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def read_json(data: bytes, file: str) -> list[ImportedDocument]:
    """Every document of a JSON import file; raises ImportRejected with all problems."""
    try:
        parsed = json.loads(data.decode("utf-8-sig"), parse_float=Decimal)
    except UnicodeDecodeError as exc:
        raise ImportRejected([Problem(file, f"byte {exc.start}", "",
                                      "is not UTF-8 text; save the file as UTF-8")]) from exc
    except json.JSONDecodeError as exc:
        raise ImportRejected([Problem(file, f"line {exc.lineno}, column {exc.colno}", "",
                                      f"is not valid JSON ({exc.msg})")]) from exc
    except RecursionError:
        # Thousands of nested brackets exhaust the parser's stack; no invoice is that deep.
        raise ImportRejected([Problem(file, "", "", "is nested too deeply to be an import "
                                                    "file; see docs/import-format.md")]) from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise ImportRejected([Problem(file, "", "", f"holds a value Herald cannot read ({exc})")]
                             ) from None
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items:
        raise ImportRejected([Problem(file, "", "", "holds an empty array; put at least one "
                                                    "invoice in")])
    problems: list[Problem] = []
    documents: list[ImportedDocument] = []
    for index, item in enumerate(items):
        number = item.get("number") if isinstance(item, dict) else None
        label = f"document {index + 1}" + (f" ({number})" if isinstance(number, str) else "")
        try:
            documents.append(read_mapping(item, Locator(file, label), source="json"))
        except ImportRejected as rejected:
            problems.extend(rejected.problems)
    if problems:
        raise ImportRejected(problems)
    return documents


def read_mapping(document: Any, locator: Locator, *, source: str) -> ImportedDocument:
    """Check one document against the schema, then convert it; every problem is raised."""
    schema_problems = [problem
                       for error in sorted(document_validator().iter_errors(document),
                                           key=error_order)
                       for problem in _schema_problems(locator, error)]
    schema_problems += [locator.problem(path, f"holds the control character U+{ord(char):04X}, "
                                              "which an e-invoice (XML) cannot carry; remove it")
                        for path, char in _unwritable_text(document)]
    if schema_problems:
        raise ImportRejected(schema_problems)
    return document_from_mapping(document, locator, source=source)


# What XML 1.0 cannot hold (tab, line feed and carriage return it can): issuing would fail
# on the first such character in any text, so the import refuses it, naming the field.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _unwritable_text(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, str):
        found = _NOT_XML.search(value)
        return [(path, found.group())] if found else []
    if isinstance(value, dict):
        return [problem for key, item in value.items()
                for problem in _unwritable_text(item, f"{path}.{key}".lstrip("."))]
    if isinstance(value, list):
        return [problem for index, item in enumerate(value)
                for problem in _unwritable_text(item, f"{path}[{index}]")]
    return []


@cache
def document_validator() -> Draft202012Validator:
    """A validator for one document (the schema's ``document`` definition)."""
    full = schema_validator().schema
    return Draft202012Validator({**full["$defs"]["document"], "$defs": full["$defs"]},
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def error_order(error: ValidationError) -> tuple:
    return tuple(str(p) for p in error.absolute_path)


def _schema_problems(locator: Locator, error: ValidationError) -> list[Problem]:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        # one problem per unknown field, each named as its field
        known = error.schema.get("properties", {})
        parent = error_path(error)
        return [locator.problem(f"{parent}.{name}".lstrip("."),
                                "is not a field Herald knows; check its spelling against "
                                "docs/import-format.md")
                for name in error.instance if name not in known]
    return [locator.problem(error_path(error), plain_message(error))]


def error_path(error: ValidationError) -> str:
    """The dotted path of the value a schema error is about (a missing field included)."""
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path).lstrip(".")
    if error.validator == "required" and "'" in error.message:
        missing = error.message.split("'")[1]
        path = f"{path}.{missing}".lstrip(".")
    return path


def plain_message(error: ValidationError) -> str:
    """jsonschema's messages, reworded for people who do not read JSON Schema."""
    validator, value = error.validator, error.instance
    if validator == "required":
        return "is missing; it is required"
    if validator == "additionalProperties":
        return f"has a field Herald does not know ({error.message.split('(')[-1].rstrip(')')}); " \
               "check its spelling against docs/import-format.md"
    if validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        return f"{value!r} is not allowed; use one of {allowed}"
    if validator == "pattern":
        hint = error.schema.get("description")
        return f"{value!r} has the wrong form" + (f"; expected {hint}" if hint else "")
    if validator == "type":
        if not error.path:
            return "must be a JSON object (one invoice) or an array of them"
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{value!r} has the wrong type; expected {expected}"
    if validator in ("minLength", "minItems"):
        return "is empty; give a value"
    if validator in ("maxLength",):
        return f"is too long; at most {error.validator_value} characters"
    if validator == "format":
        return f"{value!r} is not a valid {error.validator_value}"
    if validator == "not":
        return "a line allowance or charge takes the line's VAT; remove vat_category and vat_rate"
    return error.message
