"""The translation catalogues: complete, consistent with the code, and compilable.

A string added to a template or a view without running ``make translations`` and
translating it fails here, so no page ships half in English.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from babel.support import Translations

from portal.i18n import SUPPORTED_LANGUAGES

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "portal" / "translations"
TRANSLATED = [language for language in SUPPORTED_LANGUAGES if language != "en"]


def catalog(language: str):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as po_file:
        return read_po(po_file, locale=language)


def extracted_messages() -> set[str]:
    """Every msgid the code marks today, found as ``make translations`` finds them."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None,
                "_l": None, "pgettext": ((1, "c"), 2), "npgettext": ((1, "c"), 2, 3)}
    found = set()
    portal = ROOT / "portal"
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            portal, [(m.removeprefix("portal/"), how) for m, how in method_map],
            options_map={k.removeprefix("portal/"): v for k, v in options_map.items()},
            keywords=keywords):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_has_a_translation(language):
    untranslated = []
    for message in catalog(language):
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple | list) else [message.string]
        if "fuzzy" in message.flags or not all(s and s.strip() for s in strings):
            untranslated.append(message.id)
    assert untranslated == [], f"translate these in portal/translations/{language}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_the_placeholders(language):
    # A translation that drops or renames %(name)s would raise at render time.
    problems = [(message.id, [str(error) for error in errors])
                for message, errors in catalog(language).check()]
    assert problems == []


def test_catalogues_hold_every_string_the_code_marks():
    marked = extracted_messages()
    assert "Sign in" in marked and "Invoice %(number)s" in marked  # the extraction works
    for language in TRANSLATED:
        ids = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog(language) if m.id}
        missing = sorted(marked - ids)
        assert missing == [], f"run `make translations` and translate these ({language})"


def test_catalogues_compile(tmp_path):
    shutil.copytree(TRANSLATIONS, tmp_path / "translations")
    result = subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "compile", "--statistics",
         "-d", str(tmp_path / "translations")],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    for language in TRANSLATED:
        assert (tmp_path / "translations" / language / "LC_MESSAGES" / "messages.mo").is_file()
    dutch = Translations.load(tmp_path / "translations", ["nl"])
    spanish = Translations.load(tmp_path / "translations", ["es"])
    assert dutch.gettext("Sign in") == "Aanmelden"
    assert spanish.gettext("Amount due") == "Importe a pagar"
    assert dutch.ngettext("%(num)d document", "%(num)d documents", 2) == "%(num)d documenten"
