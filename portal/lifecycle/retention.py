"""Retention per record type, and the purge that deletes what is past it.

Issued invoices and their evidence (lines, payments, disputes, signatures, pay
links, the stored UBL and PDF) are kept until the end of the calendar year
``RETENTION_YEARS`` after the issue year (most VAT laws count from the end of
the year). Where the seller's and the customer's countries have their own
period (``RETENTION_YEARS_BY_COUNTRY``), the longest of the three applies.
Operational logs are kept ``RETENTION_OPERATIONAL_LOG_DAYS``; outbound webhook
deliveries, once finished, ``RETENTION_WEBHOOK_DELIVERY_DAYS``. Anything under a
legal hold is never deleted, and the event log is evidence and never purged.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.deliveries import FINAL_STATES, Delivery, Message
from distribution.document_names import hash_key
from distribution.documents import DocumentStore, StoredDocument
from distribution.events import Event, record_event
from distribution.models import WorkerHeartbeat
from distribution.sqltypes import utcnow
from distribution.waves import SupportContact
from distribution.webhook_models import WebhookAttempt, WebhookDelivery, WebhookDeliveryState
from portal.config import Settings
from portal.issuing import invoice_key
from portal.lifecycle.holds import held_customer_ids, held_invoice_ids
from portal.models import Customer, Dispute, Invoice, InvoiceStatus, Organisation, Payment
from portal.models.api import ApiNote, ApiRateWindow, IdempotencyRecord
from portal.models.pay import PayLink, PayLinkRequest
from portal.models.sign_in import AccountToken, SignInAttempt, SignInSession
from portal.models.signatures import SignatureRequest

ACTOR = "lifecycle"
# Subject keys of the messages about an invoice (see portal.runs, portal.reminders, the
# ops console's resend) and about a signature request; they go with it.
_MESSAGE_PREFIXES = ("reminder:{key}:", "receipt:{key}:", "resend:{key}:")
_CHUNK = 200
# A webhook delivery still pending or being sent is work, not a log: never purged.
_FINISHED_WEBHOOK_STATES = (WebhookDeliveryState.SUCCEEDED, WebhookDeliveryState.FAILED,
                            WebhookDeliveryState.CANCELLED)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind of record is kept."""

    years: int = 7
    years_by_country: dict[str, int] = field(default_factory=dict)
    operational_log_days: int = 90
    webhook_delivery_days: int = 90

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        """The policy configured in the environment."""
        return cls(settings.retention_years, dict(settings.retention_years_by_country),
                   settings.operational_log_days,
                   webhook_delivery_days=settings.webhook_delivery_days)

    def years_for(self, *countries: str | None) -> int:
        """The longest period among the default and the given countries' own."""
        return max([self.years] + [self.years_by_country[c.upper()] for c in countries
                                   if c and c.upper() in self.years_by_country])

    def kept_until(self, issue_date: date, *countries: str | None) -> date:
        """The last day a document issued on ``issue_date`` must be kept."""
        return date(issue_date.year + self.years_for(*countries), 12, 31)


@dataclass
class PurgeReport:
    """What a purge removed (or, dry, would remove), per record type, and what it kept."""

    removed: Counter[str] = field(default_factory=Counter)
    kept_on_hold: int = 0
    dry_run: bool = False
    # The documents purged: hash -> where their bytes are (None: in the row itself).
    documents: dict[str, str | None] = field(default_factory=dict)


def purge(session: Session, policy: RetentionPolicy, *, today: date | None = None,
          dry_run: bool = False, actor: str = ACTOR) -> PurgeReport:
    """Delete every record past its retention that no hold protects; one event says what.

    With ``dry_run`` nothing is deleted (the caller rolls back as well) and the
    report says what would go.
    """
    today = today or utcnow().date()
    report = PurgeReport(dry_run=dry_run)
    _purge_operational_logs(session, policy, report, dry_run)
    report.documents = _purge_invoices(session, policy, today, report, dry_run)
    if not dry_run:
        record_event(session, "lifecycle", "purge", "lifecycle.purged",
                     {"removed": dict(sorted(report.removed.items())),
                      "kept_on_hold": report.kept_on_hold, "as_of": today.isoformat()},
                     actor=actor)
    return report


def remove_files(store: DocumentStore, documents: dict[str, str | None] | set[str]) -> int:
    """Delete purged documents' files or objects (a database store has none).

    ``documents`` maps each hash to its storage URI (:attr:`PurgeReport.documents`);
    a bare hash means the older hash-named file.
    """
    removed = 0
    for sha256 in documents:
        uri = (documents[sha256] if isinstance(documents, dict)
               else f"{getattr(store, 'scheme', '')}:{hash_key(sha256)}")
        if store.delete(uri):
            removed += 1
    return removed


def _delete(session: Session, report: PurgeReport, name: str, table, where, dry_run: bool):
    if dry_run:
        count = session.scalar(sa.select(sa.func.count()).select_from(table).where(where))
    else:
        count = session.execute(sa.delete(table).where(where)
                                .execution_options(synchronize_session=False)).rowcount
    if count:
        report.removed[name] += count


def _purge_operational_logs(session: Session, policy: RetentionPolicy, report: PurgeReport,
                            dry_run: bool) -> None:
    cutoff = utcnow() - timedelta(days=policy.operational_log_days)
    held = held_invoice_ids(session) | _invoices_of(session, held_customer_ids(session))
    _delete(session, report, "sign_in_attempts", SignInAttempt.__table__,
            SignInAttempt.at < cutoff, dry_run)
    _delete(session, report, "sign_in_sessions", SignInSession.__table__,
            SignInSession.expires_at < cutoff, dry_run)
    _delete(session, report, "account_tokens", AccountToken.__table__,
            sa.or_(AccountToken.expires_at < cutoff,
                   sa.and_(AccountToken.expires_at.is_(None), AccountToken.created_at < cutoff)),
            dry_run)
    _delete(session, report, "pay_link_requests", PayLinkRequest.__table__,
            sa.and_(PayLinkRequest.created_at < cutoff,
                    sa.or_(PayLinkRequest.invoice_id.is_(None),
                           PayLinkRequest.invoice_id.not_in(held) if held else sa.true())),
            dry_run)
    _delete(session, report, "api_idempotency", IdempotencyRecord.__table__,
            IdempotencyRecord.created_at < cutoff, dry_run)
    _delete(session, report, "api_rate_windows", ApiRateWindow.__table__,
            ApiRateWindow.window_start < int(time.time()) - policy.operational_log_days * 86400,
            dry_run)
    _delete(session, report, "worker_heartbeats", WorkerHeartbeat.__table__,
            WorkerHeartbeat.last_seen_at < cutoff, dry_run)
    _purge_webhook_deliveries(session, policy, report, dry_run, held)


def _purge_webhook_deliveries(session: Session, policy: RetentionPolicy, report: PurgeReport,
                              dry_run: bool, held_invoices: set[int]) -> None:
    """Finished webhook deliveries (and their attempts) older than their days.

    A delivery of an event about something held (the invoice, its customer, or a
    message or delivery about the invoice) stays while the hold lasts.
    """
    cutoff = utcnow() - timedelta(days=policy.webhook_delivery_days)
    finished_at = sa.func.coalesce(WebhookDelivery.completed_at, WebhookDelivery.created_at)
    where = sa.and_(WebhookDelivery.state.in_(_FINISHED_WEBHOOK_STATES), finished_at < cutoff)
    held = _held_event_subjects(session, held_invoices)
    if held:
        where = sa.and_(where, ~sa.exists().where(
            Event.id == WebhookDelivery.event_id,
            sa.or_(*(sa.and_(Event.subject_type == subject_type, Event.subject_key.in_(keys))
                     for subject_type, keys in sorted(held.items())))))
    expired = sa.select(WebhookDelivery.id).where(where).scalar_subquery()
    # Attempts first: the count is reported, and their rows point at the deliveries.
    _delete(session, report, "webhook_attempts", WebhookAttempt.__table__,
            WebhookAttempt.delivery_id.in_(expired), dry_run)
    _delete(session, report, "webhook_deliveries", WebhookDelivery.__table__, where, dry_run)


def _held_event_subjects(session: Session, held_invoices: set[int]) -> dict[str, list[str]]:
    """Event subjects under a hold, by type: held customers, their and held invoices, and
    the messages and deliveries about those invoices."""
    held: dict[str, set[str]] = {}
    customers = held_customer_ids(session)
    if customers:
        held["customer"] = {str(customer_id) for customer_id in customers}
    if held_invoices:
        invoices = list(session.scalars(sa.select(Invoice).where(
            Invoice.id.in_(sorted(held_invoices)))))
        held["invoice"] = {invoice_key(invoice) for invoice in invoices}
        messages = _messages_about(session, [i.id for i in invoices], [], finished_only=False)
        if messages:
            held["message"] = {str(message_id) for message_id in messages}
            held["delivery"] = {str(delivery_id) for chunk in _chunks(messages)
                                for delivery_id in session.scalars(sa.select(Delivery.id).where(
                                    Delivery.message_id.in_(chunk)))}
    return {subject_type: sorted(keys) for subject_type, keys in held.items() if keys}


def _invoices_of(session: Session, customer_ids: set[int]) -> set[int]:
    if not customer_ids:
        return set()
    return set(session.scalars(sa.select(Invoice.id).where(Invoice.customer_id.in_(customer_ids))))


def expired_invoice_ids(session: Session, policy: RetentionPolicy, today: date,
                        report: PurgeReport | None = None) -> list[int]:
    """Invoices past retention that no hold covers (active disputes keep theirs too)."""
    shortest = min([policy.years, *policy.years_by_country.values()])
    # Only issue years that even the shortest period has passed are candidates.
    before = date(today.year - shortest, 1, 1)
    held_invoices = held_invoice_ids(session)
    held_customers = held_customer_ids(session)
    rows = session.execute(
        sa.select(Invoice.id, Invoice.customer_id, Invoice.issue_date, Invoice.status,
                  Organisation.country_code, Customer.country_code)
        .join(Organisation, Organisation.id == Invoice.organisation_id)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.issue_date < before).order_by(Invoice.id)).all()
    expired = []
    for invoice_id, customer_id, issued, status, seller_country, buyer_country in rows:
        if policy.kept_until(issued, seller_country, buyer_country) >= today:
            continue
        if invoice_id in held_invoices or customer_id in held_customers:
            if report is not None:
                report.kept_on_hold += 1
            continue
        if status is InvoiceStatus.DISPUTED:
            continue
        expired.append(invoice_id)
    return expired


def _purge_invoices(session: Session, policy: RetentionPolicy, today: date,
                    report: PurgeReport, dry_run: bool) -> dict[str, str | None]:
    ids = expired_invoice_ids(session, policy, today, report)
    if not ids:
        return {}
    hashes = {h for row in session.execute(sa.select(Invoice.ubl_sha256, Invoice.pdf_sha256)
                                           .where(Invoice.id.in_(ids))) for h in row if h}
    # Evidence around the invoices first (their foreign keys point at it), ORM deletes where
    # children cascade (signers and signatures, dispute lines and messages).
    signature_request_ids = list(session.scalars(sa.select(SignatureRequest.id).where(
        SignatureRequest.invoice_id.in_(ids))))
    for model, name in ((SignatureRequest, "signature_requests"), (Dispute, "disputes")):
        rows = list(session.scalars(sa.select(model).where(model.invoice_id.in_(ids))))
        if rows:
            report.removed[name] += len(rows)
            if not dry_run:
                for row in rows:
                    session.delete(row)
                session.flush()
    for table, column, name in ((ApiNote.__table__, ApiNote.invoice_id, "api_notes"),
                                (PayLinkRequest.__table__, PayLinkRequest.invoice_id,
                                 "pay_link_requests"),
                                (PayLink.__table__, PayLink.invoice_id, "pay_links"),
                                (Payment.__table__, Payment.invoice_id, "payments")):
        _delete(session, report, name, table, column.in_(ids), dry_run)
    messages = _messages_about(session, ids, signature_request_ids)
    if messages:
        report.removed["messages"] += len(messages)
        for chunk in _chunks(messages):
            _delete(session, report, "deliveries", Delivery.__table__,
                    Delivery.message_id.in_(chunk), dry_run)
            if not dry_run:
                # Support contacts are wave feedback: they stay, without the message.
                session.execute(sa.update(SupportContact).where(
                    SupportContact.message_id.in_(chunk)).values(message_id=None)
                    .execution_options(synchronize_session=False))
                session.execute(sa.delete(Message).where(Message.id.in_(chunk))
                                .execution_options(synchronize_session=False))
    report.removed["invoices"] += len(ids)
    if not dry_run:
        for invoice in session.scalars(sa.select(Invoice).where(Invoice.id.in_(ids))):
            session.delete(invoice)  # lines and allowances cascade
        session.flush()
    # A stored document goes only when nothing left refers to it (a message that was
    # sent with it, another invoice, a signature request).
    still_used = set()
    if hashes:
        for column in (Invoice.ubl_sha256, Invoice.pdf_sha256, Message.ubl_sha256,
                       Message.pdf_sha256, SignatureRequest.document_sha256,
                       SignatureRequest.signed_sha256):
            query = sa.select(column).where(column.in_(hashes))
            if dry_run and column.class_ is Invoice:
                query = query.where(Invoice.id.not_in(ids))
            if dry_run and column.class_ is Message and messages:
                query = query.where(Message.id.not_in(messages))
            if dry_run and column.class_ is SignatureRequest and signature_request_ids:
                query = query.where(SignatureRequest.id.not_in(signature_request_ids))
            still_used.update(session.scalars(query))
    gone = hashes - still_used
    # Where each one's bytes are, read before its record goes: they leave after the commit.
    locations = {sha256: uri for sha256, uri in session.execute(
        sa.select(StoredDocument.sha256, StoredDocument.storage_uri)
        .where(StoredDocument.sha256.in_(gone)))} if gone else {}
    if gone:
        _delete(session, report, "documents", StoredDocument.__table__,
                StoredDocument.sha256.in_(gone), dry_run)
    return {sha256: locations.get(sha256) for sha256 in gone}


def _chunks(values: list[int]) -> list[list[int]]:
    return [values[i:i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _messages_about(session: Session, invoice_ids: list[int],
                    signature_request_ids: list[int], *, finished_only: bool = True) -> list[int]:
    """Messages about the invoices or signature requests whose deliveries are all final
    (every one of them without ``finished_only``)."""
    found: set[int] = set()
    invoices = list(session.scalars(sa.select(Invoice).where(Invoice.id.in_(invoice_ids))))
    for start in range(0, len(invoices), _CHUNK):
        chunk = invoices[start:start + _CHUNK]
        exact = [f"{i.kind.value}:{invoice_key(i)}" for i in chunk]
        likes = [Message.subject_key.like(_like_prefix(p.format(key=invoice_key(i))),
                                          escape="\\")
                 for i in chunk for p in _MESSAGE_PREFIXES]
        found.update(session.scalars(sa.select(Message.id).where(
            sa.or_(Message.subject_key.in_(exact), *likes))))
    for start in range(0, len(signature_request_ids), _CHUNK):
        likes = [Message.subject_key.like(_like_prefix(f"signature:{request_id}:"),
                                          escape="\\")
                 for request_id in signature_request_ids[start:start + _CHUNK]]
        found.update(session.scalars(sa.select(Message.id).where(sa.or_(*likes))))
    if not found or not finished_only:
        return sorted(found)
    # A message with a delivery still under way is left for a later purge.
    busy = set()
    for chunk in _chunks(sorted(found)):
        busy.update(session.scalars(sa.select(Delivery.message_id).where(
            Delivery.message_id.in_(chunk), Delivery.state.not_in(FINAL_STATES))))
    return sorted(found - busy)
