"""Peppol participant IDs as customers type them: ``scheme:identifier``, checked.

The scheme is an ISO 6523 ICD code from Peppol's participant identifier code
list; the identifier has the form (and, where one exists, the check digits) of
that scheme. Typing mistakes are common (dots in a Belgian enterprise number,
the ``iso6523-actorid-upis::`` prefix copied from a directory, a missing country
prefix on a VAT number), so the input is tidied first and every refusal says
what to type instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

DIRECTORY_PREFIX = "iso6523-actorid-upis::"


class PeppolIdError(ValueError):
    """The text is not a Peppol ID Herald can use; the message names the fix."""


@dataclass(frozen=True, slots=True)
class PeppolId:
    """A checked participant ID."""

    scheme: str
    identifier: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.identifier}"


def _belgian_mod97(digits: str) -> bool:
    return 97 - int(digits[:8]) % 97 == int(digits[8:])


def _gs1_check(digits: str) -> bool:
    # GS1 mod 10: weights 3 and 1 alternate from the right, the check digit excluded.
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def _norwegian_mod11(digits: str) -> bool:
    total = sum(int(d) * w for d, w in zip(digits[:8], (3, 2, 7, 6, 5, 4, 3, 2), strict=True))
    check = 11 - total % 11
    return (0 if check == 11 else check) == int(digits[8])


def _luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _iso7064_mod97(text: str) -> bool:
    # LEI (ISO 17442): letters count as 10..35, the whole number mod 97 is 1.
    return int("".join(str(int(c, 36)) for c in text)) % 97 == 1


@dataclass(frozen=True, slots=True)
class Scheme:
    """One ICD code: what it is, the identifier's form and an example."""

    name: object  # a lazy translatable string
    pattern: str
    example: str
    check: Callable[[str], bool] | None = None
    # Punctuation people type inside numbers (dots, spaces, hyphens) is dropped first.
    strip_punctuation: bool = True
    upper: bool = False


SCHEMES: dict[str, Scheme] = {
    "0208": Scheme(_l("Belgian enterprise number"), r"[01]\d{9}", "0123456749", _belgian_mod97),
    "9925": Scheme(_l("Belgian VAT number"), r"BE[01]\d{9}", "BE0123456749",
                   lambda v: _belgian_mod97(v[2:]), upper=True),
    "0088": Scheme(_l("GLN (GS1 Global Location Number)"), r"\d{13}", "5412345000013", _gs1_check),
    "0106": Scheme(_l("Dutch Chamber of Commerce (KvK) number"), r"\d{8}", "12345678"),
    "0190": Scheme(_l("Dutch government organisation number (OIN)"), r"\d{20}",
                   "00000001234567890000"),
    "9944": Scheme(_l("Dutch VAT number"), r"NL\d{9}B\d{2}", "NL123456789B01", upper=True),
    "0192": Scheme(_l("Norwegian organisation number"), r"\d{9}", "974760673", _norwegian_mod11),
    "0007": Scheme(_l("Swedish organisation number"), r"\d{10}", "5560360793"),
    "0009": Scheme(_l("French SIRET number"), r"\d{14}", "73282932000074", _luhn),
    "0002": Scheme(_l("French SIRENE number"), r"\d{9}", "732829320", _luhn),
    "9957": Scheme(_l("French VAT number"), r"FR[0-9A-Z]{2}\d{9}", "FR40303265045", upper=True),
    "9930": Scheme(_l("German VAT number"), r"DE\d{9}", "DE123456789", upper=True),
    "0204": Scheme(_l("German Leitweg-ID"), r"[0-9A-Z]{2,12}(-[0-9A-Z]{1,30})?-[0-9]{2}",
                   "991-12345-67", strip_punctuation=False, upper=True),
    "9920": Scheme(_l("Spanish VAT number"), r"ES[0-9A-Z]\d{7}[0-9A-Z]", "ESB12345678",
                   upper=True),
    "0060": Scheme(_l("DUNS number"), r"\d{9}", "123456789"),
    "0199": Scheme(_l("Legal Entity Identifier (LEI)"), r"[0-9A-Z]{18}\d{2}",
                   "5493001KJTIIGC8Y1R12", _iso7064_mod97, upper=True),
    "0184": Scheme(_l("Danish CVR number"), r"DK\d{8}", "DK12345678", upper=True),
    "0211": Scheme(_l("Italian VAT number"), r"IT\d{11}", "IT12345678901", upper=True),
    "0151": Scheme(_l("Australian Business Number (ABN)"), r"\d{11}", "51824753556"),
}


def parse_peppol_id(text: str) -> PeppolId:
    """Check ``text`` as ``scheme:identifier`` and return it tidied.

    Raises :class:`PeppolIdError` with a message naming the fix.
    """
    raw = (text or "").strip()
    if raw.lower().startswith(DIRECTORY_PREFIX):
        raw = raw[len(DIRECTORY_PREFIX):]
    if not raw:
        raise PeppolIdError(_("Enter your Peppol ID as scheme:identifier, "
                              "e.g. 0208:0123456749."))
    scheme_code, colon, identifier = raw.partition(":")
    scheme_code, identifier = scheme_code.strip(), identifier.strip()
    if not colon or not identifier:
        raise PeppolIdError(_("Put the scheme code and a colon before the identifier, e.g. "
                              "0208:%(example)s for a Belgian enterprise number.",
                              example=re.sub(r"\D", "", raw) or "0123456749"))
    scheme = SCHEMES.get(scheme_code)
    if scheme is None:
        raise PeppolIdError(_("%(code)s is not a Peppol scheme code we know. Use a four-digit "
                              "ISO 6523 code such as 0208 (Belgian enterprise number), 0088 "
                              "(GLN), 0106 (Dutch KvK) or 9925 (Belgian VAT).",
                              code=scheme_code[:8]))
    value = re.sub(r"[\s.\-/]", "", identifier) if scheme.strip_punctuation else identifier
    if scheme.upper:
        value = value.upper()
    example = f"{scheme_code}:{scheme.example}"
    if not re.fullmatch(scheme.pattern, value):
        raise PeppolIdError(_("A %(name)s does not look like %(value)s. Type it like "
                              "%(example)s.", name=scheme.name, value=identifier[:40],
                              example=example))
    if scheme.check is not None and not scheme.check(value):
        raise PeppolIdError(_("The check digits of %(value)s do not add up for a %(name)s: "
                              "look for a mistyped digit (a valid one looks like %(example)s).",
                              value=value, name=scheme.name, example=example))
    return PeppolId(scheme_code, value)
