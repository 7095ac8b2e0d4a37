"""What a signer does with their link: open it, sign, or decline; and completing a request.

Every step is an event in the hash-chained log under the request's subject
key. Signing records who, when, from which address and browser, the
document's SHA-256 and the exact consent text; the signature row keeps the
same facts and the hash of that event.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import force_locale
from sqlalchemy.orm import Session

from distribution.document_names import DocumentName
from distribution.documents import DocumentFormat
from distribution.events import record_event
from distribution.inbox import mark_viewed
from distribution.runs import cancel_pending_for_subject
from distribution.sqltypes import utcnow
from portal.issuing import archive_name
from portal.models import (
    RequestStatus,
    Signature,
    SignatureRequest,
    Signer,
    SignerStatus,
)
from portal.signing.certificate import Certificate, SignerEvidence, signed_pdf
from portal.signing.context import SigningContext
from portal.signing.requests import SUBJECT, SigningError, ask, recipient_key_for
from portal.signing.titles import document_title
from portal.signing.tokens import token_sha256

MAX_REASON = 1000


@dataclass(frozen=True, slots=True)
class Visit:
    """Who is at the page: address, browser, and the signed-in user if any."""

    ip_address: str
    user_agent: str
    user_id: int | None = None

    @property
    def actor(self) -> str:
        """The actor recorded in events for what this visitor does."""
        return f"portal:user:{self.user_id}" if self.user_id else "portal:signing-link"


def signer_for_token(session: Session, token: str) -> Signer | None:
    """The signer a link token belongs to, or None for an unknown token."""
    if not token or len(token) > 100:
        return None
    return session.scalars(sa.select(Signer).where(
        Signer.token_sha256 == token_sha256(token))).first()


def closed_reason(signer: Signer, now: datetime | None = None) -> str | None:
    """Why ``signer`` cannot act now (a key for the page), or None when it is their turn."""
    request = signer.request
    if signer.status is SignerStatus.SIGNED:
        return "signed"
    if signer.status is SignerStatus.DECLINED:
        return "declined"
    if request.status is RequestStatus.EXPIRED or signer.status is SignerStatus.EXPIRED \
            or (now or utcnow()) >= request.expires_at:
        return "expired"
    if request.status is not RequestStatus.PENDING or signer.status is SignerStatus.SKIPPED:
        return "closed"
    if signer.status is SignerStatus.WAITING:
        return "waiting"
    return None


def record_view(session: Session, signer: Signer, visit: Visit) -> None:
    """Note the first time the signer opened the request; its messages count as viewed."""
    if signer.viewed_at is not None:
        return
    signer.viewed_at = utcnow()
    subject = f"signature:{signer.request_id}:{signer.position}"
    mark_viewed(session, recipient_key_for(signer.email), [subject],
                reminder_prefix=f"{subject}:reminder:", actor=visit.actor)
    record_event(session, SUBJECT, str(signer.request_id), "signature.viewed", {
        "position": signer.position, "email": signer.email, "ip_address": visit.ip_address,
        "user_agent": visit.user_agent}, actor=visit.actor)


def _claim(session: Session, signer: Signer, to: SignerStatus) -> None:
    """Move the signer from asked to ``to`` once: a second submission loses."""
    now = utcnow()
    won = session.execute(
        sa.update(Signer).where(Signer.id == signer.id, Signer.status == SignerStatus.ASKED)
        .values(status=to, finished_at=now).execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        raise SigningError("This request has already been answered.")
    session.refresh(signer, ["status", "finished_at"])


def sign(session: Session, signer: Signer, visit: Visit, *, typed_name: str | None,
         drawn_png: bytes | None, context: SigningContext) -> Signature:
    """Record ``signer``'s signature; ask the next signer or complete the request.

    ``typed_name`` or ``drawn_png`` (already checked by
    :func:`portal.signing.drawing.png_from_data_url`) must be given.
    """
    reason = closed_reason(signer)
    if reason is not None:
        raise SigningError(f"This request cannot be signed now ({reason}).")
    typed_name = (typed_name or "").strip()[:200] or None
    if typed_name is None and not drawn_png:
        raise SigningError("Type your name or draw your signature.")
    request = signer.request
    _claim(session, signer, SignerStatus.SIGNED)
    drawn_sha256 = hashlib.sha256(drawn_png).hexdigest() if drawn_png else None
    event = record_event(session, SUBJECT, str(request.id), "signature.signed", {
        "position": signer.position, "email": signer.email, "user_id": visit.user_id,
        "signed_at": signer.finished_at.isoformat(), "ip_address": visit.ip_address,
        "user_agent": visit.user_agent, "document_sha256": request.document_sha256,
        "consent_text": request.consent_text, "mode": request.mode.value,
        "typed_name": typed_name, "drawn_sha256": drawn_sha256}, actor=visit.actor)
    signature = Signature(
        signer_id=signer.id, signed_at=signer.finished_at, ip_address=visit.ip_address[:64],
        user_agent=visit.user_agent[:500], document_sha256=request.document_sha256,
        consent_text=request.consent_text, typed_name=typed_name, drawn_png=drawn_png or None,
        drawn_sha256=drawn_sha256, user_id=visit.user_id, event_hash=event.hash)
    signer.signature = signature
    session.add(signature)
    session.flush()
    following = next((s for s in request.signers if s.status is SignerStatus.WAITING), None)
    if following is not None:
        ask(session, following, actor=visit.actor, context=context)
    else:
        complete(session, request, actor=visit.actor, context=context)
    return signature


def decline(session: Session, signer: Signer, visit: Visit, *, reason: str) -> None:
    """Record that ``signer`` declines; the request ends and later signers are not asked."""
    reason = (reason or "").strip()
    if not reason:
        raise SigningError("Say why you decline.")
    if closed_reason(signer) is not None:
        raise SigningError("This request cannot be answered now.")
    request = signer.request
    _claim(session, signer, SignerStatus.DECLINED)
    signer.decline_reason = reason[:MAX_REASON]
    for later in request.signers:
        if later.status is SignerStatus.WAITING:
            later.status = SignerStatus.SKIPPED
    request.status = RequestStatus.DECLINED
    request.finished_at = signer.finished_at
    record_event(session, SUBJECT, str(request.id), "signature.declined", {
        "position": signer.position, "email": signer.email, "reason": signer.decline_reason,
        "ip_address": visit.ip_address, "user_agent": visit.user_agent,
        "document_sha256": request.document_sha256, "user_id": visit.user_id},
        actor=visit.actor)
    stop_messages(session, request, "the signer declined", actor=visit.actor)


def stop_messages(session: Session, request: SignatureRequest, reason: str, *,
                  actor: str) -> int:
    """Cancel the request's messages (and reminders) not sent yet."""
    return len(cancel_pending_for_subject(session, f"signature:{request.id}:", reason, actor))


def complete(session: Session, request: SignatureRequest, *, actor: str,
             context: SigningContext) -> str:
    """Everyone signed: build, store and record the signed PDF; return its SHA-256."""
    original = context.store.get(session, request.document_sha256)
    now = utcnow()
    evidence = [SignerEvidence(
        position=s.position, email=s.email, name=s.name, typed_name=s.signature.typed_name,
        drawn_png=s.signature.drawn_png, signed_at=s.signature.signed_at,
        ip_address=s.signature.ip_address, user_agent=s.signature.user_agent,
        event_hash=s.signature.event_hash) for s in request.signers]
    language = request.customer.language or "en"
    with force_locale(language):
        title = document_title(request)
    certificate = Certificate(
        request_id=request.id, title=title, mode=request.mode.value,
        seller_name=request.organisation.display_name, document_sha256=request.document_sha256,
        consent_text=request.consent_text, requested_at=request.created_at, completed_at=now,
        signers=evidence, language=language)
    pdf, pades = signed_pdf(original, certificate, key_file=context.key_file,
                            key_password=context.key_password)
    name = (archive_name(request.invoice, "-signed") if request.invoice is not None else
            DocumentName(request.created_at.year, request.customer.number,
                         f"signature-{request.id}", "-signed"))
    stored = context.store.put(session, pdf, DocumentFormat.PDF, name)
    request.signed_sha256 = stored.sha256
    request.status = RequestStatus.COMPLETED
    request.finished_at = now
    record_event(session, SUBJECT, str(request.id), "signature.completed", {
        "signed_sha256": stored.sha256, "size": stored.size, "pades": pades,
        "document_sha256": request.document_sha256,
        "evidence": [e.event_hash for e in evidence]}, actor=actor)
    return stored.sha256
