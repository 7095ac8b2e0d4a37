"""Masking tax IDs in free text: EU VAT numbers (and a few neighbours'), Spanish NIF/NIE.

A VAT number is recognised by its country prefix and that country's format
(the formats VIES checks), with single spaces, dots, dashes or slashes allowed
between characters as people write them ("BE 0123.456.789", "ES X1234567L"). The
prefix must be in capitals unless the number follows it directly ("nl123456789b01"):
"de 612345678" in Spanish is a phone number, not a German VAT number. A Spanish
DNI/NIE without prefix counts only when its check letter is right. The last four
characters are kept, so a person can still tell two numbers apart.
"""

from __future__ import annotations

import re

# The part after the country prefix, in capitals without separators.
VAT_FORMATS: dict[str, re.Pattern[str]] = {country: re.compile(pattern) for country, pattern in {
    "AT": r"U\d{8}", "BE": r"[01]\d{9}", "BG": r"\d{9,10}", "CY": r"\d{8}[A-Z]",
    "CZ": r"\d{8,10}", "DE": r"\d{9}", "DK": r"\d{8}", "EE": r"\d{9}", "EL": r"\d{9}",
    "GR": r"\d{9}", "ES": r"[A-Z]\d{7}[A-Z0-9]|\d{8}[A-Z]", "FI": r"\d{8}",
    "FR": r"[0-9A-HJ-NP-Z]{2}\d{9}", "HR": r"\d{11}", "HU": r"\d{8}",
    "IE": r"\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W]", "IT": r"\d{11}", "LT": r"\d{9}|\d{12}",
    "LU": r"\d{8}", "LV": r"\d{11}", "MT": r"\d{8}", "NL": r"\d{9}B\d{2}", "PL": r"\d{10}",
    "PT": r"\d{9}", "RO": r"\d{6,10}", "SE": r"\d{10}01", "SI": r"\d{8}", "SK": r"\d{10}",
    "XI": r"\d{9}|\d{12}", "GB": r"\d{9}|\d{12}", "CH": r"E\d{9}(?:MWST|TVA|IVA)?",
    "NO": r"\d{9}MVA",
}.items()}
# A prefix in capitals, or in small letters when a digit follows at once.
_PREFIX = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z]{2}|[a-z]{2}(?=[0-9]))")
_SEPARATORS = " .-/"
_SUFFIX = re.compile(r"(?:MWST|TVA|IVA|MVA)$")
_MAX_BODY = 16
# Spanish DNI (8 digits) or NIE (X, Y or Z and 7 digits), then the check letter.
_NIF = re.compile(r"(?<![A-Za-z0-9])([XYZxyz]?)(\d{7,8})[ -]?([A-Za-z])(?![A-Za-z0-9])")
_NIF_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _is_word_char(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _vat_at(text: str, start: int, prefix_end: int) -> tuple[int, str] | None:
    """(end, compact number) of the VAT number starting at ``start``, or None."""
    country = text[start:prefix_end].upper()
    rule = VAT_FORMATS.get(country)
    if rule is None:
        return None
    i = prefix_end
    if i < len(text) and text[i] in _SEPARATORS and text[start].isupper():
        i += 1
    chars: list[str] = []
    ends: list[int] = []
    while i < len(text) and len(chars) < _MAX_BODY:
        char = text[i]
        if _is_word_char(char) or char in "+*":
            chars.append(char.upper())
            i += 1
            ends.append(i)
        elif char in _SEPARATORS and chars and i + 1 < len(text) and _is_word_char(text[i + 1]):
            i += 1
        else:
            break
    # The run may swallow the next word ("DE123456789 is"): try shorter ends, whole words only.
    for count in range(len(chars), 0, -1):
        end = ends[count - 1]
        if end < len(text) and _is_word_char(text[end]):
            continue
        body = "".join(chars[:count])
        if rule.fullmatch(body):
            return end, country + body
    return None


def _mask_vat_numbers(text: str) -> str:
    out: list[str] = []
    pos = 0
    while (match := _PREFIX.search(text, pos)) is not None:
        found = _vat_at(text, match.start(), match.end())
        if found is None:
            out.append(text[pos:match.start() + 1])
            pos = match.start() + 1
            continue
        end, compact = found
        out.append(text[pos:match.start()])
        # Swiss and Norwegian numbers may end in a word (MWST, MVA): keep digits instead.
        digits = _SUFFIX.sub("", compact)
        out.append(f"[tax ID ending {digits[-4:]}]")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def nif_valid(text: str) -> bool:
    """True for a Spanish DNI or NIE whose check letter is right (e.g. 12345678Z, X1234567L)."""
    match = _NIF.fullmatch(text.strip())
    if match is None:
        return False
    lead, digits, letter = match.groups()
    if len(digits) != (7 if lead else 8):
        return False
    number = int(str("XYZ".index(lead.upper())) + digits if lead else digits)
    return _NIF_LETTERS[number % 23] == letter.upper()


def _mask_nif(match: re.Match[str]) -> str:
    text = match.group()
    if not nif_valid(text):
        return text
    compact = re.sub(r"[ -]", "", text).upper()
    return f"[tax ID ending {compact[-4:]}]"


def mask_tax_ids(text: str) -> str:
    """``text`` with VAT numbers and Spanish NIF/NIE numbers replaced by their last four."""
    return _NIF.sub(_mask_nif, _mask_vat_numbers(text))
