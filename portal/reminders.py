"""Payment reminders: which unpaid invoices get which reminder today, sent as a run.

The policy (stages, tones, fees) is :mod:`distribution.reminders`; this module
knows the billing side: which invoices are open, what is still unpaid, whether
credit notes cover them. Each stage of each invoice is one message with the
subject key ``reminder:<org_id>:<number>:<offset>``, so it goes out once
however often the run is made. Reminders stop when the invoice is paid,
disputed, void or fully credited: none is planned, and :func:`stop_reminders`
cancels those already planned but not yet sent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa
from babel.dates import format_date
from babel.numbers import format_currency
from sqlalchemy.orm import Session, selectinload

import einvoice
from distribution.deliveries import Delivery, DeliveryState, Message
from distribution.documents import DocumentFormat, DocumentStore
from distribution.events import record_event
from distribution.reminders import ReminderPolicy, Stage, Standing, due_stages
from distribution.runs import (
    MessageSpec,
    RunSummary,
    WaveOptions,
    cancel_pending_for_subject,
    create_run,
)
from portal.invoice_documents import document_from_invoice
from portal.issuing import archive_name, invoice_key
from portal.models import Customer, DocumentKind, Invoice, InvoiceStatus, Payment
from portal.recipients_sync import recipient_key, sync_customers
from portal.rendering import branding_for, pdf_language, review_url
from portal.runs import LOCALES

MESSAGE_TYPE = "reminder"
OPEN = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID)
ZERO = Decimal("0.00")

# The box printed on a reminder's PDF, in the customer's language.
PDF_NOTICES = {
    "en": ("Payment reminder: {amount} is still unpaid (due {due_date}).",
           "A reminder fee of {fee} applies from {since}; total to pay now: {total}."),
    "nl": ("Betalingsherinnering: er staat nog {amount} open (vervallen op {due_date}).",
           "Vanaf {since} geldt een herinneringskost van {fee}; nu te betalen in totaal: "
           "{total}."),
    "es": ("Recordatorio de pago: quedan {amount} pendientes (vencida el {due_date}).",
           "Desde el {since} se aplica un recargo por recordatorio de {fee}; total a pagar "
           "ahora: {total}."),
}


@dataclass
class ReminderSummary:
    """What a reminder run did: per stage offset, how many reminders were planned."""

    run: RunSummary | None = None
    stages: dict[int, int] = field(default_factory=dict)
    stopped: dict[str, int] = field(default_factory=dict)  # per reason, among open invoices
    pdfs: int = 0
    superseded: int = 0  # earlier reminders still unsent, cancelled for a later stage
    cancelled: int = 0  # unsent reminders of invoices that are now paid, disputed, ...

    @property
    def planned(self) -> int:
        """How many reminders this run plans."""
        return sum(self.stages.values())


def reminder_prefix(invoice: Invoice) -> str:
    """The subject-key prefix shared by every reminder about ``invoice``."""
    return f"{MESSAGE_TYPE}:{invoice_key(invoice)}:"


def stop_reminders(session: Session, invoice: Invoice, *, reason: str, actor: str) -> int:
    """Cancel the reminders about ``invoice`` not sent yet; returns how many deliveries.

    Call it when the invoice is paid, disputed, voided or fully credited.
    """
    cancelled = cancel_pending_for_subject(session, reminder_prefix(invoice),
                                           f"invoice {reason}", actor)
    if cancelled:
        record_event(session, "invoice", invoice_key(invoice), "reminder.stopped",
                     {"reason": reason, "deliveries": cancelled}, actor=actor)
    return len(cancelled)


def stop_if_fully_credited(session: Session, credit_note: Invoice, *, actor: str) -> int:
    """After ``credit_note`` is issued: stop the reminders of the invoice it fully credits.

    Returns how many reminder deliveries were cancelled (none when the invoice is
    unknown or still has an amount the credit notes do not cover).
    """
    if credit_note.kind is not DocumentKind.CREDIT_NOTE or not credit_note.preceding_invoice_number:
        return 0
    invoice = session.scalars(sa.select(Invoice).where(
        Invoice.organisation_id == credit_note.organisation_id,
        Invoice.customer_id == credit_note.customer_id,
        Invoice.kind == DocumentKind.INVOICE,
        Invoice.number == credit_note.preceding_invoice_number)).first()
    if invoice is None:
        return 0
    credited = credited_amounts(session, [invoice])[invoice.id]
    if not standing_of(invoice, credited).fully_credited:
        return 0
    return stop_reminders(session, invoice, reason="credited", actor=actor)


def credited_amounts(session: Session, invoices: list[Invoice]) -> dict[int, Decimal]:
    """Per invoice id, what the issued credit notes correcting it add up to.

    Summed here, not in SQL: SQLite keeps money as text and would sum it as floats.
    """
    by_key = {(i.organisation_id, i.customer_id, i.number): i.id for i in invoices}
    credited: dict[int, Decimal] = defaultdict(lambda: ZERO)
    numbers = {i.number for i in invoices}
    if not numbers:
        return credited
    notes = session.scalars(sa.select(Invoice).where(
        Invoice.kind == DocumentKind.CREDIT_NOTE, Invoice.ubl_sha256.is_not(None),
        Invoice.status.not_in((InvoiceStatus.DRAFT, InvoiceStatus.VOID)),
        Invoice.preceding_invoice_number.in_(numbers)))
    for note in notes:
        invoice_id = by_key.get((note.organisation_id, note.customer_id,
                                 note.preceding_invoice_number))
        if invoice_id is not None:
            credited[invoice_id] += note.payable_amount
    return credited


def paid_amounts(session: Session, invoices: list[Invoice]) -> dict[int, Decimal]:
    """Per invoice id, payments minus refunds (summed in Python, as amount_paid does)."""
    paid: dict[int, Decimal] = defaultdict(lambda: ZERO)
    ids = [i.id for i in invoices]
    for start in range(0, len(ids), 500):
        for payment in session.scalars(sa.select(Payment).where(
                Payment.invoice_id.in_(ids[start:start + 500]))):
            paid[payment.invoice_id] += payment.signed_amount
    return paid


def _sent_stages(session: Session) -> dict[str, set[int]]:
    """Per invoice prefix, the stage offsets that already have a reminder message."""
    sent: dict[str, set[int]] = defaultdict(set)
    for key in session.scalars(sa.select(Message.subject_key).where(
            Message.message_type == MESSAGE_TYPE)):
        prefix, _, offset = key.rpartition(":")
        if offset.lstrip("-").isdigit():
            sent[prefix + ":"].add(int(offset))
    return sent


def _open_invoices(session: Session) -> list[Invoice]:
    return list(session.scalars(
        sa.select(Invoice)
        .where(Invoice.kind == DocumentKind.INVOICE, Invoice.ubl_sha256.is_not(None),
               Invoice.status.in_(OPEN), Invoice.due_date.is_not(None))
        .options(selectinload(Invoice.customer).selectinload(Customer.contacts),
                 selectinload(Invoice.organisation))
        .order_by(Invoice.due_date, Invoice.id)))


def _money(amount: Decimal, currency: str, locale: str) -> str:
    return format_currency(amount, currency, locale=locale)


def _reminder_pdf(session: Session, invoice: Invoice, *, store: DocumentStore, public_url: str,
                  language: str, notice: str, overdue: bool, offset_days: int) -> str:
    doc = einvoice.compute(document_from_invoice(invoice))
    if invoice.tax_currency:
        doc.totals.tax_total_accounting = invoice.tax_amount_in_tax_currency
    # No UBL inside: a reminder is not the invoice, and an accounts-payable system that
    # reads embedded UBL must not book it a second time.
    pdf = einvoice.render_pdf(doc, branding_for(invoice.organisation), pdf_language(language),
                              review_url=review_url(public_url, invoice),
                              status="overdue" if overdue else None, notice=notice)
    name = archive_name(invoice, f"-reminder-{offset_days}")
    return store.put(session, pdf, DocumentFormat.PDF, name).sha256


def reminder_spec(session: Session, invoice: Invoice, stage: Stage, policy: ReminderPolicy, *,
                  today: date, amount_due: Decimal, sent_offsets: set[int], public_url: str,
                  store: DocumentStore, link_days: int = 30) -> MessageSpec:
    """The reminder of ``stage`` about ``invoice``, formatted in the customer's language."""
    customer = invoice.customer
    language = customer.language if customer.language in PDF_NOTICES else "en"
    locale = LOCALES.get(customer.language, "en_IE")
    fees = policy.fees_for(sent_offsets | {stage.offset_days})
    link = _pay_link(session, invoice, public_url, link_days)
    overdue = today > invoice.due_date
    parameters = {
        "customer_name": customer.name,
        "seller_name": invoice.organisation.display_name,
        "number": invoice.number,
        "amount": _money(amount_due, invoice.currency, locale),
        "due_date": format_date(invoice.due_date, "long", locale=locale),
        "link": link,
        "stage": stage.offset_days,
        "tone": stage.tone,
        "overdue": overdue,
        "fee": _money(stage.fee, invoice.currency, locale) if stage.fee else "",
        "total": _money(amount_due + fees, invoice.currency, locale) if fees else "",
        "deadline": format_date(today + timedelta(days=policy.final_notice_days), "long",
                                locale=locale)
        if stage.tone == 4 and policy.final_notice_days else "",
    }
    pdf_sha256 = None
    if stage.with_pdf:
        first, with_fee = PDF_NOTICES[language]
        notice = first.format(**parameters)
        if stage.fee:
            since = invoice.due_date + timedelta(days=stage.offset_days)
            notice += "\n" + with_fee.format(since=format_date(since, "long", locale=locale),
                                             **{k: parameters[k] for k in ("fee", "total")})
        pdf_sha256 = _reminder_pdf(session, invoice, store=store, public_url=public_url,
                                   language=customer.language, notice=notice, overdue=overdue,
                                   offset_days=stage.offset_days)
    return MessageSpec(recipient_key=recipient_key(customer),
                       subject_key=f"{reminder_prefix(invoice)}{stage.offset_days}",
                       parameters=parameters, link=link, pdf_sha256=pdf_sha256)


def _pay_link(session: Session, invoice: Invoice, public_url: str, days: int) -> str:
    # Each reminder carries a "review & pay" link of its own (see portal.pay.links).
    from portal.pay.links import issue_link, link_url

    _, token = issue_link(session, invoice, days=days, purpose="message",
                          actor="herald:reminders")
    return link_url(public_url, token)


def cancel_stopped(session: Session, *, actor: str) -> int:
    """Cancel unsent reminders of invoices now paid, disputed, void or fully credited.

    Catches what no hook stopped at once (a dispute, a credit note, a voided
    invoice); returns how many deliveries were cancelled.
    """
    keys = set(session.scalars(
        sa.select(Message.subject_key).join(Delivery, Delivery.message_id == Message.id)
        .where(Message.message_type == MESSAGE_TYPE,
               Delivery.state.in_((DeliveryState.PENDING, DeliveryState.RELEASED)))))
    wanted: set[tuple[int, str]] = set()
    for key in keys:
        parts = key.split(":", 2)  # reminder, org id, "<number>:<offset>"
        if len(parts) == 3 and parts[1].isdigit() and ":" in parts[2]:
            wanted.add((int(parts[1]), parts[2].rpartition(":")[0]))
    if not wanted:
        return 0
    invoices = [i for i in session.scalars(sa.select(Invoice).where(
        Invoice.kind == DocumentKind.INVOICE,
        Invoice.number.in_({number for _, number in wanted})))
        if (i.organisation_id, i.number) in wanted]
    credited = credited_amounts(session, invoices)
    cancelled = 0
    for invoice in invoices:
        reason = standing_of(invoice, credited[invoice.id]).stop_reason
        if reason:
            cancelled += stop_reminders(session, invoice, reason=reason, actor=actor)
    return cancelled


def standing_of(invoice: Invoice, credited: Decimal) -> Standing:
    """The facts that stop reminders about ``invoice``."""
    return Standing(paid=invoice.status is InvoiceStatus.PAID,
                    disputed=invoice.status is InvoiceStatus.DISPUTED,
                    void=invoice.status is InvoiceStatus.VOID,
                    fully_credited=invoice.payable_amount > 0
                    and credited >= invoice.payable_amount)


def create_reminder_run(session: Session, policy: ReminderPolicy, options: WaveOptions, *,
                        today: date, public_url: str, created_by: str,
                        store: DocumentStore, link_days: int = 30) -> ReminderSummary:
    """Plan today's reminders as one run (none when nothing is due); flushes, never commits.

    Each open invoice gets at most its latest reached stage, once. Earlier
    reminders about it that are still unsent are cancelled first (a customer
    never gets two at once), as are unsent reminders of invoices that stopped.
    """
    summary = ReminderSummary()
    summary.cancelled = cancel_stopped(session, actor=created_by)
    invoices = _open_invoices(session)
    credited = credited_amounts(session, invoices)
    paid = paid_amounts(session, invoices)
    sent = _sent_stages(session)
    planned: list[tuple[Invoice, Stage, MessageSpec]] = []
    for invoice in invoices:
        standing = standing_of(invoice, credited[invoice.id])
        amount_due = invoice.payable_amount - paid[invoice.id] - credited[invoice.id]
        if standing.stop_reason or amount_due <= 0:
            reason = standing.stop_reason or "nothing left to pay"
            summary.stopped[reason] = summary.stopped.get(reason, 0) + 1
            continue
        prefix = reminder_prefix(invoice)
        stages = due_stages(policy, invoice.due_date, today, sent.get(prefix, set()),
                            standing=standing)
        if not stages:
            continue
        stage = stages[0]
        spec = reminder_spec(session, invoice, stage, policy, today=today,
                             amount_due=amount_due, sent_offsets=sent.get(prefix, set()),
                             public_url=public_url, store=store, link_days=link_days)
        summary.superseded += len(cancel_pending_for_subject(
            session, prefix, f"superseded by the reminder at {stage.offset_days} days",
            created_by))
        planned.append((invoice, stage, spec))
    if not planned:
        return summary
    sync_customers(session, {invoice.customer for invoice, _, _ in planned}, actor=created_by)
    summary.run = create_run(
        session, name=f"reminders {today.isoformat()}", message_type=MESSAGE_TYPE,
        specs=[spec for _, _, spec in planned],
        selection={"kind": MESSAGE_TYPE, "today": today.isoformat(),
                   "policy": policy.to_json()},
        created_by=created_by, options=options)
    for invoice, stage, spec in planned:
        summary.stages[stage.offset_days] = summary.stages.get(stage.offset_days, 0) + 1
        summary.pdfs += bool(spec.pdf_sha256)
        record_event(session, "invoice", invoice_key(invoice), "reminder.planned", {
            "run_id": summary.run.run.id, "stage": stage.offset_days, "tone": stage.tone,
            "fee": str(stage.fee) if stage.fee is not None else None,
            "amount_due": spec.parameters["amount"], "pdf_sha256": spec.pdf_sha256},
            actor=created_by)
    return summary
