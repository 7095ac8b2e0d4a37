"""Reminding the current signer and expiring requests nobody finished in time.

Run by the periodic task (every quarter of an hour) and by ``herald signatures
remind``; running it twice in a row does nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from distribution.events import record_event
from distribution.sqltypes import utcnow
from portal.models import RequestStatus, SignatureRequest, SignerStatus
from portal.signing.actions import stop_messages
from portal.signing.context import SigningContext
from portal.signing.requests import SUBJECT, send_request


@dataclass
class ReminderResult:
    """What one pass did."""

    reminded: int = 0
    expired: int = 0


def remind_and_expire(session: Session, *, context: SigningContext, actor: str,
                      now: datetime | None = None) -> ReminderResult:
    """Expire overdue requests and remind current signers not reminded for a while."""
    now = now or utcnow()
    result = ReminderResult()
    pending = session.scalars(
        sa.select(SignatureRequest).where(SignatureRequest.status == RequestStatus.PENDING)
        .options(selectinload(SignatureRequest.signers)).order_by(SignatureRequest.id))
    for request in pending:
        if now >= request.expires_at:
            expire(session, request, actor=actor, now=now)
            result.expired += 1
            continue
        signer = request.current_signer
        if signer is None or signer.asked_at is None:
            continue
        last = signer.last_reminded_at or signer.asked_at
        if now - last < context.remind_every:
            continue
        signer.reminders_sent += 1
        signer.last_reminded_at = now
        subject_key = send_request(session, signer, reminder=signer.reminders_sent,
                                   actor=actor, context=context)
        record_event(session, SUBJECT, str(request.id), "signature.reminded", {
            "position": signer.position, "email": signer.email,
            "reminder": signer.reminders_sent, "message": subject_key}, actor=actor)
        result.reminded += 1
    return result


def expire(session: Session, request: SignatureRequest, *, actor: str,
           now: datetime | None = None) -> None:
    """End a request nobody finished in time; open links then say so."""
    request.status = RequestStatus.EXPIRED
    request.finished_at = now or utcnow()
    unsigned = []
    for signer in request.signers:
        if signer.status in (SignerStatus.ASKED, SignerStatus.WAITING):
            signer.status = SignerStatus.EXPIRED
            unsigned.append(signer.email)
    record_event(session, SUBJECT, str(request.id), "signature.expired", {
        "expires_at": request.expires_at.isoformat(), "unsigned": unsigned}, actor=actor)
    stop_messages(session, request, "the request expired", actor=actor)
