"""Asking people to sign or acknowledge a document, in order, through distribution.

:func:`request_invoice_signatures` and :func:`request_upload_signatures` are
what the CLI, the API and the ops console call. Each takes a session, flushes
and never commits. The first signer is asked at once; each next one when the
one before has signed (:mod:`portal.signing.actions`).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from pypdf import PdfReader
from pypdf.errors import PdfReadError
from sqlalchemy.orm import Session

from distribution.channels.base import ChannelName
from distribution.document_names import DocumentName
from distribution.documents import DocumentFormat
from distribution.events import record_event
from distribution.recipients import add_address, upsert_recipient
from distribution.runs import MessageSpec, WaveOptions, create_run, start_wave
from distribution.sqltypes import utcnow
from portal.issuing import archive_name
from portal.models import (
    Customer,
    Invoice,
    InvoiceStatus,
    RequestStatus,
    SignatureRequest,
    Signer,
    SignerStatus,
    SigningMode,
)
from portal.rendering import NotIssued, render_invoice_pdf
from portal.signing.context import SigningContext
from portal.signing.tokens import link_token, new_salt, token_sha256

MESSAGE_TYPE = "signature_request"
SUBJECT = "signature_request"
MAX_SIGNERS = 10
MAX_CONSENT_TEXT = 4000
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# A signature request is one message to one person: it goes out at once, any day, any hour.
SEND_AT_ONCE = WaveOptions(rate_per_minute=600.0, window_start_hour=0, window_end_hour=24,
                           weekdays=tuple(range(7)))


class SigningError(ValueError):
    """A signing request or action cannot be carried out; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class SignerInput:
    """One person to ask, by email address (and name, when known)."""

    email: str
    name: str | None = None


def request_invoice_signatures(session: Session, invoice: Invoice, signers: list[SignerInput],
                               *, mode: SigningMode, consent_text: str, actor: str,
                               context: SigningContext) -> SignatureRequest:
    """Ask ``signers``, in order, to sign or acknowledge the PDF of an issued invoice."""
    if invoice.status is InvoiceStatus.VOID:
        raise SigningError(f"{invoice.number} is void; a void document cannot be signed")
    try:
        pdf_sha256 = render_invoice_pdf(session, invoice, context.store,
                                        public_url=context.public_url, actor=actor)
    except NotIssued as exc:
        raise SigningError(str(exc)) from exc
    # The title is the number; pages and messages say "invoice" in the reader's language.
    return _create(session, customer=invoice.customer, invoice=invoice,
                   title=invoice.number, document_sha256=pdf_sha256,
                   signers=signers, mode=mode, consent_text=consent_text, actor=actor,
                   context=context)


def request_upload_signatures(session: Session, customer: Customer, pdf: bytes, *, title: str,
                              signers: list[SignerInput], mode: SigningMode,
                              consent_text: str, actor: str, context: SigningContext,
                              invoice: Invoice | None = None) -> SignatureRequest:
    """Ask ``signers`` to sign an uploaded PDF (an adjustment, a refund authorisation...)."""
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise SigningError("title: give the document a title of 1 to 200 characters, "
                           "e.g. 'Refund authorisation'")
    if invoice is not None and invoice.customer_id != customer.id:
        raise SigningError(f"invoice {invoice.number} belongs to another customer")
    check_pdf(pdf)
    # Filed beside the invoice it concerns, or under the customer by its title.
    name = (archive_name(invoice, "-to-sign") if invoice is not None else
            DocumentName(utcnow().year, customer.number, f"to-sign-{title}"))
    stored = context.store.put(session, pdf, DocumentFormat.PDF, name)
    return _create(session, customer=customer, invoice=invoice, title=title,
                   document_sha256=stored.sha256, signers=signers, mode=mode,
                   consent_text=consent_text, actor=actor, context=context)


def check_pdf(pdf: bytes) -> None:
    """Refuse a file that is not a readable PDF of sensible size."""
    if len(pdf) > MAX_UPLOAD_BYTES:
        raise SigningError(f"pdf: the file is larger than {MAX_UPLOAD_BYTES // 1024 // 1024} "
                           "MB; make it smaller")
    if not pdf.startswith(b"%PDF-"):
        raise SigningError("pdf: the file is not a PDF; export the document as PDF first")
    try:
        pages = len(PdfReader(io.BytesIO(pdf)).pages)
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise SigningError(f"pdf: the PDF cannot be read ({exc}); export it again") from None
    if pages < 1:
        raise SigningError("pdf: the PDF has no pages")


def _clean_signers(signers: list[SignerInput]) -> list[SignerInput]:
    if not signers:
        raise SigningError("signer: name at least one signer by email address")
    if len(signers) > MAX_SIGNERS:
        raise SigningError(f"signer: at most {MAX_SIGNERS} signers per request")
    cleaned: list[SignerInput] = []
    for signer in signers:
        try:
            email = validate_email(signer.email.strip(), check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise SigningError(f"signer: {signer.email!r} is not an email address ({exc})") \
                from None
        if email.lower() in {s.email.lower() for s in cleaned}:
            raise SigningError(f"signer: {email} is named twice; name each signer once")
        cleaned.append(SignerInput(email.lower(), (signer.name or "").strip()[:200] or None))
    return cleaned


def _create(session: Session, *, customer: Customer, invoice: Invoice | None, title: str,
            document_sha256: str, signers: list[SignerInput], mode: SigningMode,
            consent_text: str, actor: str, context: SigningContext) -> SignatureRequest:
    consent_text = (consent_text or "").strip()
    if not consent_text:
        raise SigningError("text: give the consent text the signers agree to")
    if len(consent_text) > MAX_CONSENT_TEXT:
        raise SigningError(f"text: the consent text is longer than {MAX_CONSENT_TEXT} "
                           "characters; shorten it")
    cleaned = _clean_signers(signers)
    now = utcnow()
    request = SignatureRequest(
        organisation_id=customer.organisation_id, customer_id=customer.id,
        invoice_id=invoice.id if invoice else None, title=title,
        document_sha256=document_sha256, mode=SigningMode(mode), consent_text=consent_text,
        status=RequestStatus.PENDING, created_by=actor, created_at=now,
        expires_at=now + context.expire_after)
    request.customer = customer
    request.signers = [Signer(position=n, email=s.email, name=s.name,
                              status=SignerStatus.WAITING, token_salt=new_salt(),
                              reminders_sent=0)
                       for n, s in enumerate(cleaned, start=1)]
    session.add(request)
    session.flush()
    for signer in request.signers:
        signer.token_sha256 = token_sha256(signer_token(signer, context))
    record_event(session, SUBJECT, str(request.id), "signature.created", {
        "title": title, "document_sha256": document_sha256, "mode": request.mode.value,
        "consent_text": consent_text, "customer_id": customer.id,
        "invoice_id": request.invoice_id, "signers": [s.email for s in request.signers],
        "expires_at": request.expires_at.isoformat()}, actor=actor)
    ask(session, request.signers[0], actor=actor, context=context)
    return request


def signer_token(signer: Signer, context: SigningContext) -> str:
    """The token in ``signer``'s link (never stored; derived again when needed)."""
    return link_token(context.secret_key, signer.id, signer.token_salt)


def signing_link(signer: Signer, context: SigningContext) -> str:
    """The address a signer opens to sign, without a password."""
    return f"{context.public_url.rstrip('/')}/sign/{signer_token(signer, context)}"


def ask(session: Session, signer: Signer, *, actor: str, context: SigningContext) -> None:
    """It is ``signer``'s turn: mark them asked and send them the request."""
    signer.status = SignerStatus.ASKED
    signer.asked_at = utcnow()
    subject_key = send_request(session, signer, reminder=0, actor=actor, context=context)
    record_event(session, SUBJECT, str(signer.request_id), "signature.requested", {
        "position": signer.position, "email": signer.email, "message": subject_key,
        "document_sha256": signer.request.document_sha256}, actor=actor)


def recipient_key_for(email: str) -> str:
    """Distribution's key for a signer: opaque, one per email address."""
    return "signer:" + hashlib.sha256(email.lower().encode()).hexdigest()[:40]


def send_request(session: Session, signer: Signer, *, reminder: int, actor: str,
                 context: SigningContext) -> str:
    """Send the signing link to ``signer`` (``reminder`` 0 for the first message).

    The message goes through distribution as a run of one, started at once, so it
    follows the signer's channels and is logged like every other message.
    Returns the message's subject key.
    """
    request = signer.request
    customer = request.customer
    recipient = upsert_recipient(session, recipient_key_for(signer.email),
                                 name=signer.name or signer.email, language=customer.language,
                                 time_zone=customer.time_zone)
    # The operator named this address for this request: it is the signer's own.
    add_address(session, recipient, ChannelName.EMAIL, signer.email, verified=True,
                actor=actor)
    link = signing_link(signer, context)
    subject_key = f"signature:{request.id}:{signer.position}"
    if reminder:
        subject_key += f":reminder:{reminder}"
    spec = MessageSpec(recipient_key=recipient.recipient_key, subject_key=subject_key,
                       parameters={"customer_name": signer.name or signer.email,
                                   "seller_name": _seller_name(request),
                                   "number": request.title, "link": link,
                                   "reminder": reminder, "mode": request.mode.value},
                       link=link)
    summary = create_run(session, name=f"signature request {request.id}",
                         message_type=MESSAGE_TYPE, specs=[spec],
                         selection={"kind": MESSAGE_TYPE, "request_id": request.id,
                                    "position": signer.position, "reminder": reminder},
                         created_by=actor, options=SEND_AT_ONCE)
    for wave in summary.run.waves:
        start_wave(session, wave.id, actor=actor)
    return subject_key


def _seller_name(request: SignatureRequest) -> str:
    return request.organisation.display_name if request.organisation else ""
