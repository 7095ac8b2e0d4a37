"""Operators' own wording of Herald's messages: versioned overrides of the built-in texts.

An override is kept per template kind (a message type; reminders have one kind per
tone), part (email subject, text and HTML body, push title and body) and language.
Every change is a new row in ``message_template_versions``, never an update: a
save, a restore (a new version holding an older version's text) and a reset to
the built-in text (a version without text) alike, each with its author, time and
note, and each recorded in the event log. The newest version of a key is the
active one; without any, the built-in text of :mod:`distribution.templates` is
used.

Before a text is stored it is checked (:func:`check`): it must parse, use only
the placeholders its message type is given (:data:`PLACEHOLDERS`), use no
function calls or attribute lookups, and link nowhere but ``{{ link }}`` (the
portal's own address), so an override cannot turn a message into phishing.

Senders read the active texts through :func:`active_overrides`, cached per
process for :data:`CACHE_SECONDS`, so a worker picks a change up within a minute
and a send costs no extra query.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

import sqlalchemy as sa
from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from distribution.events import record_event
from distribution.models import Base
from distribution.sqltypes import UTCDateTime, utcnow
from distribution.templates import (
    LANGUAGES,
    REMINDER_TEXTS,
    REMINDER_TONES,
    TEXTS,
    Overrides,
    compiled,
    compiled_html,
    environment_for,
)

log = logging.getLogger(__name__)

PARTS = ("email_subject", "email_text", "email_html", "push_title", "push_body")
KINDS = ("invoice", "credit_note", *(f"reminder.{tone}" for tone in REMINDER_TONES),
         "receipt", "signature_request", "notice")
MAX_SOURCE = {"email_subject": 300, "push_title": 200, "email_text": 20_000,
              "email_html": 50_000, "push_body": 2_000}
MAX_NOTE = 300
CACHE_SECONDS = 30.0
SUBJECT_TYPE = "message_template"

# The placeholders each kind may use: what the portal actually passes (and what
# distribution.templates.render adds), nothing else.
#
# kind               passed by                              placeholders
# invoice            portal.runs.message_spec               customer_name seller_name number
#                                                           amount due_date link
# credit_note        portal.runs.message_spec               (the same as invoice)
# reminder.1 to .4   portal.reminders.reminder_spec         invoice's, plus stage (days from
#                                                           the due date), tone (1 to 4),
#                                                           overdue (true/false), fee, total,
#                                                           deadline (each formatted, or empty)
# receipt            portal.pay.receipts.receipt_spec       customer_name seller_name number
#                                                           amount link
# signature_request  portal.signing.requests                customer_name seller_name number
#                                                           link reminder (true when a reminder)
#                                                           mode (sign or acknowledge)
# notice             operator notices (render's default)    customer_name seller_name text link
#
# Left out on purpose: ``fallback_notice`` (render puts it above the body itself),
# ``embed_pdf_in_ubl`` (a delivery setting, not words) and the receipt's ``due_date``
# (always empty).
_DOCUMENT = frozenset({"customer_name", "seller_name", "number", "amount", "due_date", "link"})
_REMINDER = _DOCUMENT | {"stage", "tone", "overdue", "fee", "total", "deadline"}
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "invoice": _DOCUMENT,
    "credit_note": _DOCUMENT,
    **{f"reminder.{tone}": _REMINDER for tone in REMINDER_TONES},
    "receipt": frozenset({"customer_name", "seller_name", "number", "amount", "link"}),
    "signature_request": frozenset({"customer_name", "seller_name", "number", "link",
                                    "reminder", "mode"}),
    "notice": frozenset({"customer_name", "seller_name", "text", "link"}),
}

# Filters that only change case, spacing or length, or give a default.
ALLOWED_FILTERS = frozenset({"upper", "lower", "title", "capitalize", "trim", "default", "d",
                             "truncate", "e", "escape"})
# Constructs that could reach into objects or other templates.
_FORBIDDEN_NODES = (nodes.Call, nodes.Getattr, nodes.Getitem, nodes.Include, nodes.Import,
                    nodes.FromImport, nodes.Extends, nodes.Macro, nodes.CallBlock,
                    nodes.Assign, nodes.AssignBlock, nodes.For, nodes.Block, nodes.Scope,
                    nodes.ScopedEvalContextModifier,
                    # Arithmetic: the values are words, and "x" * 10**9 would eat the memory.
                    nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod,
                    nodes.Pow)
# A scheme followed by an address, or a host name (name.tld, www.name).
_URL = re.compile(r"(?i)\b(?:https?|ftps?|mailto|javascript|data|vbscript|file|tel|sms):\S"
                  r"|(?<![\w@.-])//[\w-]"
                  r"|\bwww\.[\w-]"
                  r"|\b[\w-]+(?:\.[\w-]+)*\.[a-z]{2,24}\b")
_SAMPLE_LINK = "https://portal.herald.invalid/r/SAMPLE"
_HTML_FORBIDDEN_TAGS = frozenset({"script", "iframe", "frame", "frameset", "object", "embed",
                                  "applet", "form", "input", "button", "textarea", "select",
                                  "base", "link", "meta", "img", "image", "picture", "source",
                                  "video", "audio", "svg", "math", "style"})
_URL_ATTRIBUTES = frozenset({"src", "srcset", "action", "formaction", "background", "poster",
                             "data", "cite", "longdesc", "lowsrc", "xlink:href", "ping",
                             "manifest", "codebase", "archive", "usemap"})


class TemplateCheckError(ValueError):
    """A text cannot be stored; the message names the problem and the fix."""


class TemplateVersion(Base):
    """One version of one overridden text; the newest per key is the active one."""

    __tablename__ = "message_template_versions"
    __table_args__ = (sa.UniqueConstraint("kind", "part", "language", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    part: Mapped[str] = mapped_column(sa.String(16))
    language: Mapped[str] = mapped_column(sa.String(8))
    version: Mapped[int]
    # None: back to the built-in text.
    source: Mapped[str | None] = mapped_column(sa.Text)
    note: Mapped[str] = mapped_column(sa.String(MAX_NOTE), default="")
    restored_from: Mapped[int | None]
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def key(self) -> str:
        """The key events are recorded under: ``kind:part:language``."""
        return f"{self.kind}:{self.part}:{self.language}"


@dataclass(frozen=True, slots=True)
class TemplateKey:
    """Which text: a kind, a part and a language, all known."""

    kind: str
    part: str
    language: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TemplateCheckError(f"kind: unknown message type {self.kind!r}; use one of "
                                     + ", ".join(KINDS))
        if self.part not in PARTS:
            raise TemplateCheckError(f"part: unknown part {self.part!r}; use one of "
                                     + ", ".join(PARTS))
        if self.language not in LANGUAGES:
            raise TemplateCheckError(f"language: unknown language {self.language!r}; use one "
                                     "of " + ", ".join(LANGUAGES))

    @property
    def text(self) -> str:
        """``kind:part:language``."""
        return f"{self.kind}:{self.part}:{self.language}"


# --- the built-in texts, as a starting point ---------------------------------------------

def builtin_source(key: TemplateKey) -> str:
    """The built-in text of ``key`` as Jinja source (the HTML one as its equivalent)."""
    if key.kind.startswith("reminder."):
        subject, body = REMINDER_TEXTS[key.language][int(key.kind.split(".")[1])]
    else:
        subject, body = TEXTS[key.kind][key.language]
    if key.part in ("email_subject", "push_title"):
        return subject
    if key.part == "email_html":
        return _html_source(body)
    return body


def _html_source(body: str) -> str:
    # What distribution.templates._html builds from the text, written as a template: one
    # paragraph per block, the portal link clickable. Jinja escapes the placeholders.
    paragraphs = "\n".join(
        "<p>" + block.replace("\n", "<br>\n").replace(
            "{{ link }}", '<a href="{{ link }}">{{ link }}</a>') + "</p>"
        for block in body.split("\n\n"))
    return f"<!doctype html>\n<html>\n<body>\n{paragraphs}\n</body>\n</html>"


# --- checking a text ---------------------------------------------------------------------

def check(key: TemplateKey, source: str) -> None:
    """Refuse a text that does not parse, uses unknown placeholders or links elsewhere.

    Raises :class:`TemplateCheckError` naming the problem and what is allowed.
    """
    if not source.strip():
        raise TemplateCheckError("text: the text is empty; write one, or use "
                                 "'Reset to built-in' to go back to Herald's own text")
    limit = MAX_SOURCE[key.part]
    if len(source) > limit:
        raise TemplateCheckError(f"text: the text has {len(source)} characters; keep it under "
                                 f"{limit}")
    allowed = PLACEHOLDERS[key.kind]
    try:
        tree = environment_for(key.part).parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateCheckError(f"text: line {exc.lineno}: {exc.message}; check the "
                                 "{{ }} and {% %} pairs") from None
    for node in tree.find_all(_FORBIDDEN_NODES):
        raise TemplateCheckError(
            f"text: line {node.lineno}: only placeholders such as {{{{ number }}}}, "
            "filters and {% if %} ... {% endif %} may be used, no calls, attributes, loops, "
            "arithmetic, assignments or other templates")
    for node in tree.find_all(nodes.Filter):
        if node.name not in ALLOWED_FILTERS:
            raise TemplateCheckError(f"text: line {node.lineno}: the filter '{node.name}' is "
                                     "not allowed; use one of "
                                     + ", ".join(sorted(ALLOWED_FILTERS)))
    unknown = sorted(meta.find_undeclared_variables(tree) - allowed)
    if unknown:
        raise TemplateCheckError(
            f"text: unknown placeholder {{{{ {unknown[0]} }}}}"
            + (f" (and {', '.join(unknown[1:])})" if unknown[1:] else "")
            + f"; this message can use: {', '.join(sorted(allowed))}")
    for node in tree.find_all(nodes.TemplateData):
        _refuse_addresses(node.data)
    for node in tree.find_all(nodes.Const):
        if isinstance(node.value, str):
            _refuse_addresses(node.value)
    # Addresses put together from pieces show up once the text is filled in.
    _check_rendered(key, source)


def _refuse_addresses(text: str, *, rendered: bool = False) -> None:
    if rendered:
        text = text.replace(_SAMPLE_LINK, " ")
    match = _URL.search(text)
    if match:
        # The whole word around the match, as the operator typed it.
        start = max(text.rfind(space, 0, match.start()) for space in " \n\t\"'<>") + 1
        ends = [end for end in (text.find(space, match.end()) for space in " \n\t\"'<>")
                if end >= 0]
        word = text[start:min(ends, default=len(text))]
        raise TemplateCheckError(
            f"text: '{word}' looks like a web or mail address; messages may only link to "
            "the portal, with {{ link }}")


def _samples(key: TemplateKey) -> list[dict[str, Any]]:
    # Filled and empty values, so every {% if %} branch is rendered at least once.
    tone = int(key.kind.split(".")[1]) if key.kind.startswith("reminder.") else 1
    filled = {"customer_name": "Ann Peeters", "seller_name": "Example Telecom",
              "number": "INV-2026-000123", "amount": "€ 120,15",
              "due_date": "31 December 2026", "link": _SAMPLE_LINK,
              "text": "Our offices are closed on Friday.", "stage": 14, "tone": tone,
              "overdue": True, "fee": "€ 10,00", "total": "€ 130,15",
              "deadline": "14 January 2027", "reminder": True, "mode": "sign"}
    empty = {**filled, "overdue": False, "fee": "", "total": "", "deadline": "", "text": "",
             "reminder": False, "stage": 0, "due_date": "", "mode": "acknowledge"}
    return [filled, empty]


def sample_parameters(key: TemplateKey) -> dict[str, Any]:
    """Made-up values for every placeholder of ``key``'s kind (previews without a document)."""
    return {name: value for name, value in _samples(key)[0].items()
            if name in PLACEHOLDERS[key.kind]}


def message_type_of(kind: str) -> tuple[str, dict[str, Any]]:
    """The message type a kind renders as, and the parameters that select it (a tone)."""
    if kind.startswith("reminder."):
        tone = int(kind.split(".")[1])
        return "reminder", {"tone": tone, "overdue": tone >= 3}
    return kind, {}


def _check_rendered(key: TemplateKey, source: str) -> None:
    template = (compiled_html if key.part == "email_html" else compiled)(source)
    for values in _samples(key):
        try:
            output = template.render(values)
        except SecurityError:
            raise TemplateCheckError("text: the text tries something the sandbox forbids; "
                                     "use plain placeholders") from None
        except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
            raise TemplateCheckError(f"text: the text cannot be filled in ({exc}); use the "
                                     "placeholders as they are") from None
        if key.part == "email_html":
            _check_html(output)
        _refuse_addresses(output, rendered=True)


class _LinkAudit(HTMLParser):
    """Collects what an HTML body would load or link to."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problem: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.problem:
            return
        if tag in _HTML_FORBIDDEN_TAGS:
            self.problem = (f"the <{tag}> element is not allowed; use text, paragraphs, "
                            "headings, lists, tables and links to {{ link }}")
            return
        for name, value in attrs:
            value = (value or "").strip()
            if name.startswith("on"):
                self.problem = f"the {name} attribute is not allowed (no scripts in messages)"
            elif name == "href" and value != _SAMPLE_LINK:
                self.problem = 'a link may only point to the portal: write href="{{ link }}"'
            elif name in _URL_ATTRIBUTES:
                self.problem = (f"the {name} attribute is not allowed: messages load nothing "
                                "from elsewhere")
            elif name == "style" and re.search(r"(?i)url\s*\(|@import|expression\s*\(", value):
                self.problem = "styles may not load anything (no url(), @import)"
            if self.problem:
                return

    handle_startendtag = handle_starttag


def _check_html(output: str) -> None:
    audit = _LinkAudit()
    audit.feed(output)
    audit.close()
    if audit.problem:
        raise TemplateCheckError(f"text: {audit.problem}")
    # Attribute values were checked above; what remains is text.
    _refuse_addresses(re.sub(r'href\s*=\s*"[^"]*"', " ", output), rendered=True)


# --- versions ----------------------------------------------------------------------------

def history(session: Session, key: TemplateKey) -> list[TemplateVersion]:
    """Every version of ``key``, newest first."""
    return list(session.scalars(
        sa.select(TemplateVersion)
        .where(TemplateVersion.kind == key.kind, TemplateVersion.part == key.part,
               TemplateVersion.language == key.language)
        .order_by(TemplateVersion.version.desc())))


def active_versions(session: Session) -> dict[tuple[str, str, str], TemplateVersion]:
    """The newest version of each key that has any (an override, or a reset)."""
    newest = (sa.select(sa.func.max(TemplateVersion.id))
              .group_by(TemplateVersion.kind, TemplateVersion.part, TemplateVersion.language))
    return {(row.kind, row.part, row.language): row for row in session.scalars(
        sa.select(TemplateVersion).where(TemplateVersion.id.in_(newest)))}


def active_sources(session: Session) -> dict[tuple[str, str, str], str]:
    """The overriding text of each key whose active version is not the built-in one."""
    newest = (sa.select(sa.func.max(TemplateVersion.id))
              .group_by(TemplateVersion.kind, TemplateVersion.part, TemplateVersion.language))
    rows = session.execute(
        sa.select(TemplateVersion.kind, TemplateVersion.part, TemplateVersion.language,
                  TemplateVersion.source)
        .where(TemplateVersion.id.in_(newest), TemplateVersion.source.is_not(None)))
    return {(kind, part, language): source for kind, part, language, source in rows}


def save(session: Session, key: TemplateKey, source: str, *, note: str, actor: str,
         restored_from: int | None = None) -> TemplateVersion:
    """Check ``source`` and store it as the new active version of ``key``.

    ``source`` None resets to the built-in text. Refuses a text equal to the active
    one (nothing would change). Records ``template.saved`` (or ``.restored``,
    ``.reset``) with the author; flushes, never commits.
    """
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise TemplateCheckError(f"note: keep the note under {MAX_NOTE} characters")
    if source is not None:
        source = source.replace("\r\n", "\n")
        check(key, source)
    versions = history(session, key)
    current = versions[0].source if versions else None
    if source == current:
        raise TemplateCheckError("text: this is already the active text; nothing was saved"
                                 if source is not None else
                                 "text: the built-in text is already in use; nothing was saved")
    version = TemplateVersion(kind=key.kind, part=key.part, language=key.language,
                              version=(versions[0].version if versions else 0) + 1,
                              source=source, note=note, restored_from=restored_from,
                              created_by=actor, created_at=utcnow())
    try:
        with session.begin_nested():
            session.add(version)
            session.flush()
    except sa.exc.IntegrityError:
        raise TemplateCheckError("text: someone saved this text at the same moment; reload "
                                 "the page and try again") from None
    kind = ("template.reset" if source is None else
            "template.restored" if restored_from is not None else "template.saved")
    record_event(session, SUBJECT_TYPE, key.text, kind,
                 {"version": version.version, "note": note, "restored_from": restored_from,
                  "sha256": hashlib.sha256(source.encode()).hexdigest() if source else None,
                  "length": len(source) if source else 0},
                 actor=actor)
    forget_cached()
    return version


def restore(session: Session, key: TemplateKey, version: int, *, note: str,
            actor: str) -> TemplateVersion:
    """Make an older version's text active again, as a new version (checked again)."""
    old = session.scalar(sa.select(TemplateVersion).where(
        TemplateVersion.kind == key.kind, TemplateVersion.part == key.part,
        TemplateVersion.language == key.language, TemplateVersion.version == version))
    if old is None:
        raise TemplateCheckError(f"version: there is no version {version} of this text")
    return save(session, key, old.source, note=note or f"restored version {version}",
                actor=actor, restored_from=version)


def reset(session: Session, key: TemplateKey, *, note: str, actor: str) -> TemplateVersion:
    """Go back to the built-in text, as a new version."""
    return save(session, key, None, note=note or "reset to the built-in text", actor=actor)


# --- what senders use --------------------------------------------------------------------

_cache: weakref.WeakKeyDictionary[Any, tuple[float, Overrides]] = weakref.WeakKeyDictionary()
_last: tuple[Any, float, Overrides] | None = None
_cache_lock = threading.Lock()
_RETRY_SECONDS = 5.0


def active_overrides(make_session: sessionmaker[Session]) -> Overrides:
    """The active overriding texts, read at most every :data:`CACHE_SECONDS` per process.

    When the database cannot be read, the texts read last stay in use (the built-in
    ones if none were read yet) and the read is tried again a few seconds later.
    """
    global _last
    bind = make_session.kw.get("bind") or make_session
    now = time.monotonic()
    last = _last
    if last is not None and last[0] is bind and last[1] > now:
        return last[2]  # the send path: one database per worker, so nearly always this
    cached = _cache.get(bind)
    if cached is not None and cached[0] > now:
        _last = (bind, *cached)
        return cached[1]
    with _cache_lock:
        try:
            with make_session() as session:
                overrides: Overrides = active_sources(session)
            expires = now + CACHE_SECONDS
        except sa.exc.SQLAlchemyError as exc:
            log.warning("message templates could not be read, using the last known: %s",
                        exc.__class__.__name__)
            overrides = cached[1] if cached is not None else {}
            expires = now + _RETRY_SECONDS
        _cache[bind] = (expires, overrides)
        _last = (bind, expires, overrides)
    return overrides


def forget_cached() -> None:
    """Drop this process's cached texts (after a save, so this process sees it at once)."""
    global _last
    with _cache_lock:
        _cache.clear()
        _last = None


def overrides_with(session: Session, key: TemplateKey, draft: str | None) -> dict[
        tuple[str, str, str], str]:
    """The active overrides read now, with ``draft`` in place of ``key``'s (for previews)."""
    overrides = dict(active_sources(session))
    if draft is None:
        overrides.pop((key.kind, key.part, key.language), None)
    else:
        overrides[(key.kind, key.part, key.language)] = draft.replace("\r\n", "\n")
    return overrides


def describe(mapping: Mapping[tuple[str, str, str], Any]) -> list[str]:
    """The keys of ``mapping`` as ``kind:part:language`` strings (for logs and tests)."""
    return sorted(":".join(key) for key in mapping)
