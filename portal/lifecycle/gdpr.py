"""GDPR access (one customer's data as JSON plus their documents) and erasure.

Erasure removes personal data (names, emails, phones, addresses, push tokens,
free text) but keeps the fiscal record the law requires: issued invoices, their
stored UBL and PDF (which carry the buyer's name and address as issued), and
payments. The event log is evidence and is kept; erasure is recorded in it
without the erased values.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.deliveries import Delivery, Message
from distribution.documents import DocumentStore
from distribution.events import Event, record_event
from distribution.recipients import Recipient
from distribution.sqltypes import utcnow
from portal.lifecycle.holds import customer_is_held
from portal.models import (
    Customer,
    CustomerEmailAddress,
    Dispute,
    Invoice,
    Payment,
    User,
)
from portal.models.api import ApiNote, CustomerApiToken
from portal.models.sign_in import AccountToken, RecoveryCode, SignInSession
from portal.models.signatures import SignatureRequest, Signer
from portal.recipients_sync import recipient_key

ERASED = "[erased]"
# Secrets and internal digests never leave in an export.
_SECRET_COLUMNS = {"password_hash", "session_token", "totp_secret", "totp_last_counter",
                   "token_sha256", "token_salt", "secret_sha256", "code_sha256"}


class ErasureRefused(ValueError):
    """The customer cannot be erased now; the message says why."""


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return None  # binary evidence (drawn signatures) is not part of the JSON
    return value


def _row(obj: Any) -> dict[str, Any]:
    return {c.key: _plain(getattr(obj, c.key)) for c in sa.inspect(obj).mapper.column_attrs
            if c.key not in _SECRET_COLUMNS and c.key not in ("content", "drawn_png")}


def export_customer(session: Session, customer: Customer, store: DocumentStore, *,
                    actor: str) -> bytes:
    """A zip: ``customer.json`` with everything Herald holds on them, and their documents."""
    invoices = list(session.scalars(sa.select(Invoice).where(Invoice.customer_id == customer.id)
                                    .order_by(Invoice.issue_date, Invoice.id)))
    recipient = session.scalars(sa.select(Recipient).where(
        Recipient.recipient_key == recipient_key(customer))).first()
    data: dict[str, Any] = {
        "exported_at": utcnow().isoformat(),
        "customer": _row(customer),
        "contacts": [_row(c) for c in customer.contacts],
        "accounts": [_row(a) for a in customer.accounts],
        "email_addresses": [_row(r) for r in session.scalars(sa.select(CustomerEmailAddress)
                            .where(CustomerEmailAddress.customer_id == customer.id))],
        "users": [_row(u) for u in session.scalars(sa.select(User)
                                                   .where(User.customer_id == customer.id))],
        "invoices": [{**_row(i), "lines": [_row(line) for line in i.lines]} for i in invoices],
        "payments": [_row(p) for p in session.scalars(sa.select(Payment)
                                                      .where(Payment.customer_id == customer.id))],
        "disputes": [{**_row(d), "messages": [_row(m) for m in d.messages]}
                     for d in session.scalars(sa.select(Dispute)
                                              .where(Dispute.customer_id == customer.id))],
        "signature_requests": [
            {**_row(r), "signers": [_row(s) for s in r.signers]}
            for r in session.scalars(sa.select(SignatureRequest)
                                     .where(SignatureRequest.customer_id == customer.id))],
        "notes": [_row(n) for n in session.scalars(sa.select(ApiNote).where(
            ApiNote.customer_id == customer.id, ApiNote.suppressed.is_(False)))],
        "addresses": [], "messages": [],
    }
    if recipient is not None:
        data["addresses"] = [_row(a) for a in recipient.addresses]
        for message in session.scalars(sa.select(Message).where(
                Message.recipient_id == recipient.id).order_by(Message.id)):
            data["messages"].append({**_row(message), "deliveries": [
                {k: v for k, v in _row(d).items() if k != "idempotency_key"}
                for d in message.deliveries]})
    data["events"] = [
        _row(e) for e in session.scalars(sa.select(Event).where(sa.or_(
            sa.and_(Event.subject_type == "customer", Event.subject_key == str(customer.id)),
            sa.and_(Event.subject_type == "recipient",
                    Event.subject_key == recipient_key(customer)))).order_by(Event.id))]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("customer.json", json.dumps(data, indent=2, ensure_ascii=False,
                                                     default=str))
        for invoice in invoices:
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in invoice.number)
            for sha, suffix in ((invoice.ubl_sha256, "xml"), (invoice.pdf_sha256, "pdf")):
                if sha:
                    archive.writestr(f"documents/{safe}.{suffix}", store.get(session, sha))
    record_event(session, "customer", str(customer.id), "customer.exported",
                 {"invoices": len(invoices)}, actor=actor)
    return buffer.getvalue()


def erase_customer(session: Session, customer: Customer, *, reason: str,
                   actor: str) -> dict[str, int]:
    """Erase the customer's personal data, keeping the fiscal record; returns counts per kind."""
    reason = (reason or "").strip()
    if not reason:
        raise ErasureRefused("--reason is required: say on what ground the data is erased "
                             "(e.g. 'GDPR art. 17 request of 2026-11-20')")
    if customer_is_held(session, customer.id):
        raise ErasureRefused(f"customer {customer.number} is under a legal hold; release the "
                             "hold first ('herald lifecycle hold list')")
    counts: dict[str, int] = {}
    customer.name = ERASED
    for column in ("address_line1", "address_line2", "city", "postal_code",
                   "country_subdivision", "legal_registration_id", "peppol_endpoint_id",
                   "peppol_endpoint_scheme"):
        setattr(customer, column, None)
    # The VAT number and country stay: they are on the issued invoices, the fiscal record.
    for account in customer.accounts:
        account.description = None  # often a service address or a person's name
    counts["contacts"] = len(customer.contacts)
    customer.contacts.clear()
    counts["email_addresses"] = _delete(session, CustomerEmailAddress,
                                        CustomerEmailAddress.customer_id == customer.id)
    users = list(session.scalars(sa.select(User).where(User.customer_id == customer.id)))
    user_ids = [u.id for u in users]
    for user in users:
        user.email = f"erased-{user.id}@erased.invalid"
        user.name = ERASED
        user.password_hash = None
        user.active = False
        user.totp_secret = None
        user.totp_enabled_at = None
        user.session_token = hashlib.sha256(f"erased:{user.id}".encode()).hexdigest()[:64]
    counts["users"] = len(users)
    if user_ids:
        for model in (SignInSession, AccountToken, RecoveryCode, CustomerApiToken):
            counts[model.__tablename__] = _delete(session, model, model.user_id.in_(user_ids))
    counts["dispute_texts"] = 0
    for dispute in session.scalars(sa.select(Dispute).where(Dispute.customer_id == customer.id)):
        dispute.description = ERASED
        counts["dispute_texts"] += 1
        for message in dispute.messages:
            if message.author.value == "customer":
                message.body = ERASED
                counts["dispute_texts"] += 1
    counts["notes"] = session.execute(
        sa.update(ApiNote).where(ApiNote.customer_id == customer.id)
        .values(summary=ERASED, links={}).execution_options(synchronize_session=False)).rowcount
    signers = list(session.scalars(sa.select(Signer).join(SignatureRequest).where(
        SignatureRequest.customer_id == customer.id)))
    for signer in signers:
        signer.email = f"erased-signer-{signer.id}@erased.invalid"
        signer.name = None
        signer.decline_reason = None
    counts["signers"] = len(signers)
    recipient = session.scalars(sa.select(Recipient).where(
        Recipient.recipient_key == recipient_key(customer))).first()
    counts["addresses"] = counts["messages"] = 0
    if recipient is not None:
        recipient.name = ERASED
        now = utcnow()
        for address in recipient.addresses:
            # Deliveries point at the row, so it stays, emptied and dead.
            address.value = ERASED
            address.value_sha256 = hashlib.sha256(f"erased:{address.id}".encode()).hexdigest()
            address.label = None
            address.dead_since = address.dead_since or now
            address.dead_reason = "erased"
            counts["addresses"] += 1
        for message in session.scalars(sa.select(Message).where(
                Message.recipient_id == recipient.id)):
            if "customer_name" in message.parameters:
                message.parameters = {**message.parameters, "customer_name": ERASED}
                counts["messages"] += 1
        session.execute(sa.update(Delivery).where(
            Delivery.message_id.in_(sa.select(Message.id).where(
                Message.recipient_id == recipient.id)))
            .values(last_error=None, fallback_reason=None)
            .execution_options(synchronize_session=False))
    session.flush()
    record_event(session, "customer", str(customer.id), "customer.erased",
                 {"reason": reason, "erased": counts,
                  "kept": "issued invoices, their stored UBL and PDF, payments, event log"},
                 actor=actor)
    return counts


def _delete(session: Session, model, where) -> int:
    return session.execute(sa.delete(model).where(where)
                           .execution_options(synchronize_session=False)).rowcount

