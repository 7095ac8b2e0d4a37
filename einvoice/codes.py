"""Code lists taken from the official CEN EN 16931 schematron.

The lists (UN/ECE Rec 20/21 units, ISO 4217 currencies, UNCL 5305 VAT
categories, UNTDID 1001 document types) are not copied into this code: they
are read from ``cen/EN16931-UBL-validation-preprocessed.sch`` in the rules
folder, where each list is the space-separated string inside a rule's
``contains(' ... ', ...)`` test, and cached per path.

The rules folder is the argument, else the environment variable
``EINVOICE_RULES_DIR``; without either, functions return ``None`` (callers
then fall back to a pattern check) except :func:`vat_categories`, which falls
back to the categories this package has rules for.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from lxml import etree

SCHEMATRON = Path("cen") / "EN16931-UBL-validation-preprocessed.sch"
_SCH_NS = {"sch": "http://purl.oclc.org/dsdl/schematron"}
_LIST_IN_TEST = re.compile(r"contains\(\s*'\s*([^']+?)\s*'\s*,")

#: VAT categories this package implements rules for (UNCL 5305 subset of EN 16931).
KNOWN_VAT_CATEGORIES = frozenset({"S", "Z", "E", "AE", "K", "G", "O", "L", "M"})

#: Shape of a UN/ECE Rec 20/21 unit code, used when no rules folder is available.
UNIT_CODE_PATTERN = re.compile(r"^[A-Z0-9]{1,3}$")


def rules_dir_or_default(rules_dir: Path | None) -> Path | None:
    """Return ``rules_dir``, else ``$EINVOICE_RULES_DIR`` as a Path, else None."""
    if rules_dir is not None:
        return Path(rules_dir)
    env = os.environ.get("EINVOICE_RULES_DIR")
    return Path(env) if env else None


@functools.lru_cache(maxsize=8)
def _lists_by_rule(schematron: Path) -> dict[str, tuple[frozenset[str], ...]]:
    """Parse the schematron once and return every code list per rule id."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    tree = etree.parse(str(schematron), parser)
    lists: dict[str, tuple[frozenset[str], ...]] = {}
    for assertion in tree.iterfind(".//sch:assert", _SCH_NS):
        rule_id = assertion.get("id")
        test = assertion.get("test") or ""
        found = tuple(frozenset(m.group(1).split()) for m in _LIST_IN_TEST.finditer(test))
        if rule_id and found:
            lists[rule_id] = found
    return lists


def code_list(rule_id: str, rules_dir: Path | None = None, index: int = 0) -> frozenset[str] | None:
    """Return the ``index``-th code list inside the CEN rule ``rule_id``.

    Returns None when there is no rules folder; raises FileNotFoundError when
    the folder is given but has no CEN schematron, and KeyError when the rule
    holds no such list.
    """
    folder = rules_dir_or_default(rules_dir)
    if folder is None:
        return None
    lists = _lists_in(folder)
    if rule_id not in lists or index >= len(lists[rule_id]):
        raise KeyError(f"no code list #{index} in rule {rule_id} of {folder / SCHEMATRON}")
    return lists[rule_id][index]


@functools.lru_cache(maxsize=8)
def _lists_in(folder: Path) -> dict[str, tuple[frozenset[str], ...]]:
    # Cached per folder: resolving and checking the path on every call was a third of
    # writing a document with the code lists on (five look-ups per document).
    schematron = (folder / SCHEMATRON).resolve()
    if not schematron.is_file():
        raise FileNotFoundError(f"CEN schematron not found: {schematron}")
    return _lists_by_rule(schematron)


def unit_codes(rules_dir: Path | None = None) -> frozenset[str] | None:
    """UN/ECE Recommendation 20 and 21 unit codes (rule BR-CL-23), or None without rules.

    Without rules, callers check the code against :data:`UNIT_CODE_PATTERN` only.
    """
    return code_list("BR-CL-23", rules_dir)


def currency_codes(rules_dir: Path | None = None) -> frozenset[str] | None:
    """ISO 4217 currency codes (rule BR-CL-04), or None without rules.

    Without rules, callers check for three capital letters only.
    """
    return code_list("BR-CL-04", rules_dir)


def vat_categories(rules_dir: Path | None = None) -> frozenset[str]:
    """UNCL 5305 VAT category codes allowed by EN 16931 (rule BR-CL-18).

    Without rules, returns :data:`KNOWN_VAT_CATEGORIES`.
    """
    return code_list("BR-CL-18", rules_dir) or KNOWN_VAT_CATEGORIES


def document_type_codes(credit_note: bool, rules_dir: Path | None = None) -> frozenset[str] | None:
    """UNTDID 1001 type codes allowed for invoices or credit notes (rule BR-CL-01), or None."""
    return code_list("BR-CL-01", rules_dir, index=1 if credit_note else 0)


def payment_means_codes(rules_dir: Path | None = None) -> frozenset[str] | None:
    """UNCL 4461 payment means codes (rule BR-CL-16), or None without rules."""
    return code_list("BR-CL-16", rules_dir)
