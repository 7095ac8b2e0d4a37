"""Message templates in the ops console: the texts in use, editing with a live preview, history.

Every staff member may look; admins and billing operators may edit, restore and
reset. Each change is a new version (distribution.template_store), recorded in
the event log with the operator's name. The preview renders the draft with the
parameters of a real issued document (portal.runs.message_spec), escaped; an
HTML body is shown as its source and as plain text, never rendered in the page.
"""

from __future__ import annotations

from functools import wraps
from html.parser import HTMLParser

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session, selectinload
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import Length, Optional

from distribution.template_store import (
    KINDS,
    MAX_NOTE,
    PARTS,
    PLACEHOLDERS,
    TemplateCheckError,
    TemplateKey,
    TemplateVersion,
    active_versions,
    builtin_source,
    check,
    history,
    message_type_of,
    overrides_with,
    reset,
    restore,
    sample_parameters,
    save,
)
from distribution.templates import LANGUAGES, render
from portal.db import db_session
from portal.labels import MESSAGE_TYPES
from portal.models import Customer, DocumentKind, Invoice, Role
from portal.ops import bp
from portal.ops.access import View, actor, staff_required
from portal.runs import SENDABLE, message_spec

# Who may change what customers read.
TEMPLATE_EDITORS = frozenset({Role.ADMIN, Role.BILLING_OPERATOR})
PREVIEW_DOCUMENTS = 50

PART_LABELS = {"email_subject": _l("Email subject"), "email_text": _l("Email text"),
               "email_html": _l("Email HTML"), "push_title": _l("Push title"),
               "push_body": _l("Push text")}
KIND_LABELS = {
    **{kind: label for kind, label in MESSAGE_TYPES.items() if kind != "reminder"},
    "reminder.1": _l("Reminder before the due date"),
    "reminder.2": _l("Reminder on the due date"),
    "reminder.3": _l("Reminder once overdue"),
    "reminder.4": _l("Final notice"),
}


class TemplateForm(FlaskForm):
    """A draft text, a note for the history, and the document to preview it on."""

    source = TextAreaField(_l("Text"), validators=[Length(max=50_000)])
    note = StringField(_l("Note for the history (optional)"),
                       validators=[Optional(), Length(max=MAX_NOTE)],
                       description=_l("Why it changed, e.g. 'new payment terms'."))
    document = SelectField(_l("Preview with document"), choices=[], validate_choice=False)
    save = SubmitField(_l("Save as new version"))
    preview = SubmitField(_l("Preview"))


class VersionActionForm(FlaskForm):
    """Restore an older version, or reset to the built-in text."""

    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=MAX_NOTE)])


def may_edit_templates() -> bool:
    """True when the signed-in user may change message texts."""
    return current_user.is_authenticated and current_user.role in TEMPLATE_EDITORS


def _editor_required(view: View) -> View:
    @wraps(view)
    @staff_required
    def wrapped(*args, **kwargs):
        if not may_edit_templates():
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _key(kind: str, part: str, language: str) -> TemplateKey:
    try:
        return TemplateKey(kind, part, language)
    except TemplateCheckError:
        abort(404)


@bp.route("/templates")
@staff_required
def templates() -> str:
    """Every text per message type, part and language, with the version in use."""
    active = active_versions(db_session())
    rows = [(kind, KIND_LABELS[kind],
             [(part, PART_LABELS[part],
               [(language, active.get((kind, part, language))) for language in LANGUAGES])
              for part in PARTS])
            for kind in KINDS]
    return render_template("ops/templates/index.html", rows=rows, languages=LANGUAGES)


@bp.route("/templates/<kind>/<part>/<language>", methods=["GET", "POST"])
@staff_required
def edit_template(kind: str, part: str, language: str) -> str | Response | tuple[str, int]:
    """One text: what is in use, the editor with its preview, and the version history."""
    key = _key(kind, part, language)
    session = db_session()
    versions = history(session, key)
    in_use = versions[0].source if versions and versions[0].source is not None else None
    form = TemplateForm()
    form.document.choices = _document_choices(session, key)
    status = 200
    if request.method == "GET":
        form.source.data = in_use if in_use is not None else builtin_source(key)
    elif not may_edit_templates():
        abort(403)
    elif form.validate_on_submit():
        if form.save.data:
            try:
                version = save(session, key, form.source.data or "", note=form.note.data or "",
                               actor=actor())
            except TemplateCheckError as exc:
                form.source.errors = [*form.source.errors, str(exc)]
                status = 422
            else:
                flash(_("Version %(version)d saved. Messages sent from now on use it; "
                        "running workers pick it up within a minute.",
                        version=version.version), "info")
                return redirect(url_for("ops.edit_template", kind=kind, part=part,
                                        language=language))
    else:
        status = 422
    context = _page_context(session, key, form, versions)
    return render_template("ops/templates/edit.html", **context), status


@bp.route("/templates/<kind>/<part>/<language>/preview", methods=["POST"])
@_editor_required
def preview_template(kind: str, part: str, language: str) -> str:
    """The draft filled in with a real document's values (htmx swaps it in)."""
    key = _key(kind, part, language)
    form = TemplateForm()
    session = db_session()
    form.document.choices = _document_choices(session, key)
    if not form.validate_on_submit():
        abort(400)
    return render_template("ops/templates/_preview.html",
                           preview=_preview(session, key, form.source.data or "",
                                            form.document.data))


@bp.route("/templates/<kind>/<part>/<language>/restore/<int:version>", methods=["POST"])
@_editor_required
def restore_template(kind: str, part: str, language: str, version: int) -> Response:
    """Make an older version's text the one in use again (as a new version)."""
    key = _key(kind, part, language)
    form = VersionActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        made = restore(db_session(), key, version, note=form.note.data or "", actor=actor())
    except TemplateCheckError as exc:
        flash(str(exc), "error")
    else:
        flash(_("Version %(old)d restored as version %(new)d.", old=version, new=made.version),
              "info")
    return redirect(url_for("ops.edit_template", kind=kind, part=part, language=language))


@bp.route("/templates/<kind>/<part>/<language>/reset", methods=["POST"])
@_editor_required
def reset_template(kind: str, part: str, language: str) -> Response:
    """Go back to Herald's built-in text (as a new version)."""
    key = _key(kind, part, language)
    form = VersionActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        made = reset(db_session(), key, note=form.note.data or "", actor=actor())
    except TemplateCheckError as exc:
        flash(str(exc), "error")
    else:
        flash(_("Back to the built-in text (version %(version)d).", version=made.version),
              "info")
    return redirect(url_for("ops.edit_template", kind=kind, part=part, language=language))


def _page_context(session: Session, key: TemplateKey, form: TemplateForm,
                  versions: list[TemplateVersion]) -> dict[str, object]:
    preview = None
    if may_edit_templates():
        preview = _preview(session, key, form.source.data or "", form.document.data)
    return {"key": key, "kind_label": KIND_LABELS[key.kind], "part_label": PART_LABELS[key.part],
            "form": form, "versions": versions, "action_form": VersionActionForm(),
            "active": versions[0] if versions else None, "builtin": builtin_source(key),
            "placeholders": sorted(PLACEHOLDERS[key.kind]), "may_edit": may_edit_templates(),
            "preview": preview, "who": _who}


def _who(created_by: str) -> str:
    # Actors are "staff:<id>:<role>:<email>"; people know each other by email.
    return created_by.split(":", 3)[3] if created_by.count(":") >= 3 else created_by


def _documents(session: Session, key: TemplateKey) -> list[Invoice]:
    kind = DocumentKind.CREDIT_NOTE if key.kind == "credit_note" else DocumentKind.INVOICE
    return list(session.scalars(
        sa.select(Invoice).where(Invoice.kind == kind, Invoice.status.in_(SENDABLE))
        .options(selectinload(Invoice.customer), selectinload(Invoice.organisation))
        .order_by(Invoice.issue_date.desc(), Invoice.id.desc()).limit(PREVIEW_DOCUMENTS)))


def _document_choices(session: Session, key: TemplateKey) -> list[tuple[str, str]]:
    return [(str(invoice.id), f"{invoice.number} · {invoice.customer.name}")
            for invoice in _documents(session, key)]


def _preview(session: Session, key: TemplateKey, draft: str,
             document_id: str | None) -> dict[str, object]:
    """What the draft would send: subject and body, or the reason it cannot be used."""
    draft = draft.replace("\r\n", "\n")
    try:
        check(key, draft)
    except TemplateCheckError as exc:
        return {"error": str(exc)}
    invoice = None
    if document_id and document_id.isdigit():
        invoice = session.scalar(
            sa.select(Invoice).join(Customer, Customer.id == Invoice.customer_id)
            .where(Invoice.id == int(document_id), Invoice.status.in_(SENDABLE)))
    if invoice is None:
        documents = _documents(session, key)
        invoice = documents[0] if documents else None
    message_type, selector = message_type_of(key.kind)
    public_url = current_app.config["HERALD"].public_url
    if invoice is not None:
        parameters = {name: value for name, value in message_spec(invoice, public_url)
                      .parameters.items() if name in PLACEHOLDERS[key.kind]}
        source = _("Filled in with %(number)s of %(customer)s.", number=invoice.number,
                   customer=invoice.customer.name)
    else:
        parameters = {**sample_parameters(key), "link": f"{public_url}/pay/example"}
        source = _("No issued document to preview with; made-up values are used.")
    parameters = {**sample_parameters(key), **parameters, **selector}
    if key.kind == "notice":
        parameters["text"] = _("(the notice's own words)")
    push = key.part.startswith("push_")
    rendered = render(message_type, key.language, parameters,
                      channel="web_push" if push else "email",
                      overrides=overrides_with(session, key, draft))
    return {"source": source, "push": push, "subject": rendered.subject,
            "text": rendered.text, "html": None if push else rendered.html,
            "html_text": None if push else _plain_text(rendered.html)}


class _TextOnly(HTMLParser):
    """The words of an HTML body, a line break per paragraph or line break."""

    BLOCKS = frozenset({"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _plain_text(html: str) -> str:
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
    return "\n".join(line for line in lines if line)
