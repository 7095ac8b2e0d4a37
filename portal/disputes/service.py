"""Opening, discussing and settling disputes; called by the portal, the ops console and the API.

Opening a dispute stops the invoice's reminders at once (the invoice becomes
``disputed``), records a support contact against the wave that sent the invoice
(so wave steering sees it) and logs ``dispute.opened`` on the invoice. Rejecting
or withdrawing the last active dispute gives the invoice back the status its
payments imply, and the next reminder run picks it up again; an accepted dispute
leaves it disputed until the seller corrects it (a credit note, or voiding it).
Services flush and never commit; free text is masked before it is stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from distribution.events import record_event
from distribution.feedback import UnknownRecipient, record_contact
from distribution.sqltypes import utcnow
from distribution.waves import ContactSource
from portal.issuing import invoice_key
from portal.labels import invoice_status
from portal.masking import mask_payment_details
from portal.models import Invoice, InvoiceLine, InvoiceStatus, User
from portal.models.disputes import (
    ACTIVE_DISPUTE,
    Dispute,
    DisputeLine,
    DisputeMessage,
    DisputeReason,
    DisputeResolution,
    DisputeStatus,
    MessageAuthor,
)
from portal.payments import PAYMENT_DRIVEN, amount_paid, status_for
from portal.recipients_sync import recipient_key
from portal.reminders import stop_reminders

MAX_TEXT = 2000  # characters in a reason, a message or a resolution
DISPUTABLE = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID,
              InvoiceStatus.DISPUTED)
# Which status may follow which; resolving and withdrawing close a dispute for good.
NEXT_STATUS = {
    DisputeStatus.OPEN: {DisputeStatus.UNDER_REVIEW, DisputeStatus.RESOLVED,
                         DisputeStatus.WITHDRAWN},
    DisputeStatus.UNDER_REVIEW: {DisputeStatus.RESOLVED, DisputeStatus.WITHDRAWN},
    DisputeStatus.RESOLVED: set(),
    DisputeStatus.WITHDRAWN: set(),
}


class DisputeError(ValueError):
    """The request cannot be carried out; ``field`` names the input at fault, if one is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def active_dispute(session: Session, invoice: Invoice) -> Dispute | None:
    """The invoice's dispute still open or under review, if there is one."""
    return session.scalars(sa.select(Dispute).where(
        Dispute.invoice_id == invoice.id, Dispute.status.in_(ACTIVE_DISPUTE))
        .order_by(Dispute.id.desc())).first()


def _clean_text(text: str, field: str, *, required: bool = True) -> str:
    text = (text or "").strip()
    if required and not text:
        raise DisputeError(_("Write a few words; this field cannot be empty."), field)
    if len(text) > MAX_TEXT:
        raise DisputeError(_("Keep it to %(max)d characters or fewer (this has %(length)d).",
                             max=MAX_TEXT, length=len(text)), field)
    return mask_payment_details(text)


def open_dispute(session: Session, invoice: Invoice, *, reason: DisputeReason,
                 description: str, lines: Iterable[InvoiceLine] = (),
                 amount: Decimal | None = None, user: User | None = None,
                 actor: str) -> Dispute:
    """Open a dispute about ``invoice`` (or ``lines`` of it) and stop its reminders.

    Raises :class:`DisputeError` when the invoice cannot be disputed, a line is
    not the invoice's, the amount is out of range, or the text is empty or too long.
    """
    if invoice.is_credit_note:
        raise DisputeError(_("Credit notes cannot be disputed; dispute the invoice they "
                             "correct."))
    if invoice.status not in DISPUTABLE:
        raise DisputeError(_("Invoice %(number)s is %(status)s and cannot be disputed.",
                             number=invoice.number, status=invoice_status(invoice.status)))
    # Two requests at once must not open two disputes: the second waits for the first.
    session.execute(sa.select(Invoice.id).where(Invoice.id == invoice.id).with_for_update())
    if active_dispute(session, invoice) is not None:
        raise DisputeError(_("Invoice %(number)s already has an open dispute; add a message "
                             "to it instead.", number=invoice.number))
    lines = list(lines)
    if any(line.invoice_id != invoice.id for line in lines):
        raise DisputeError(_("Choose lines of this invoice only."), "lines")
    if amount is not None:
        if not isinstance(amount, Decimal) or amount <= 0:
            raise DisputeError(_("Enter an amount above 0, or leave it empty."), "amount")
        if amount.as_tuple().exponent < -2:
            raise DisputeError(_("Enter the amount with at most two decimals."), "amount")
        if amount > invoice.tax_inclusive_amount:
            raise DisputeError(_("The amount cannot be more than the invoice total."),
                               "amount")
    if not isinstance(reason, DisputeReason):
        raise DisputeError(_("Choose a reason from the list."), "reason")
    text = _clean_text(description, "description")
    dispute = Dispute(
        organisation_id=invoice.organisation_id, customer_id=invoice.customer_id,
        invoice_id=invoice.id, status=DisputeStatus.OPEN, reason=reason, description=text,
        amount=amount, currency=invoice.currency,
        invoice_status_before=invoice.status if invoice.status is not InvoiceStatus.DISPUTED
        else InvoiceStatus.ISSUED,
        opened_by_user_id=user.id if user else None,
        lines=[DisputeLine(invoice_line_id=line.id) for line in lines])
    session.add(dispute)
    session.flush()
    invoice.status = InvoiceStatus.DISPUTED
    stopped = stop_reminders(session, invoice, reason="disputed", actor=actor)
    record_event(session, "invoice", invoice_key(invoice), "dispute.opened", {
        "dispute_id": dispute.id, "reason": reason.value,
        "lines": [line.line_id for line in lines],
        "amount": str(amount) if amount is not None else None,
        "status_before": dispute.invoice_status_before.value,
        "reminders_cancelled": stopped}, actor=actor)
    _record_contact(session, invoice, actor=actor)
    return dispute


def _record_contact(session: Session, invoice: Invoice, *, actor: str) -> None:
    """Count the dispute against the wave that delivered the invoice to the customer."""
    # A customer never sent anything through distribution has no recipient: no wave
    # caused this contact, so there is nothing to steer.
    with suppress(UnknownRecipient):
        record_contact(session, recipient_key(invoice.customer_id), ContactSource.DISPUTE,
                       subject_key=f"{invoice.kind.value}:{invoice_key(invoice)}", actor=actor)


def add_message(session: Session, dispute: Dispute, body: str, *, author: MessageAuthor,
                user: User | None = None, actor: str) -> DisputeMessage:
    """Add a message to the dispute's thread; customers may write only while it is active."""
    if author is MessageAuthor.CUSTOMER and not dispute.is_active:
        raise DisputeError(_("This dispute is closed; open a new one if something is still "
                             "wrong."))
    message = DisputeMessage(dispute_id=dispute.id, author=author,
                             author_user_id=user.id if user else None,
                             body=_clean_text(body, "body"))
    session.add(message)
    dispute.messages.append(message)
    dispute.updated_at = utcnow()
    session.flush()
    record_event(session, "invoice", invoice_key(dispute.invoice), "dispute.message_added",
                 {"dispute_id": dispute.id, "message_id": message.id, "author": author.value},
                 actor=actor)
    return message


def set_status(session: Session, dispute: Dispute, status: DisputeStatus, *,
               resolution: DisputeResolution | None = None, resolution_text: str | None = None,
               actor: str) -> Dispute:
    """Move the dispute on (staff); resolving needs a resolution and the text the customer reads."""
    if status not in NEXT_STATUS[dispute.status]:
        raise DisputeError(_("A dispute that is %(before)s cannot become %(after)s.",
                             before=dispute.status.value.replace("_", " "),
                             after=status.value.replace("_", " ")), "status")
    if status is DisputeStatus.RESOLVED:
        if not isinstance(resolution, DisputeResolution):
            raise DisputeError(_("Say whether the dispute is accepted or rejected."),
                               "resolution")
        dispute.resolution = resolution
        dispute.resolution_text = _clean_text(resolution_text or "", "resolution_text")
    elif resolution is not None:
        raise DisputeError(_("Only a resolved dispute has a resolution."), "resolution")
    before = dispute.status
    dispute.status = status
    now = utcnow()
    dispute.updated_at = now
    if status in (DisputeStatus.RESOLVED, DisputeStatus.WITHDRAWN):
        dispute.closed_at = now
    session.flush()
    restored = None
    if status is DisputeStatus.WITHDRAWN or resolution is DisputeResolution.REJECTED:
        restored = _restore_invoice(session, dispute)
    record_event(session, "invoice", invoice_key(dispute.invoice),
                 "dispute.withdrawn" if status is DisputeStatus.WITHDRAWN
                 else "dispute.status_changed", {
                     "dispute_id": dispute.id, "from": before.value, "to": status.value,
                     "resolution": resolution.value if resolution else None,
                     "invoice_status": restored.value if restored else None}, actor=actor)
    return dispute


def withdraw(session: Session, dispute: Dispute, *, user: User | None = None,
             actor: str) -> Dispute:
    """The customer withdraws the dispute; the invoice and its reminders carry on."""
    if not dispute.is_active:
        raise DisputeError(_("Only an open dispute can be withdrawn."))
    return set_status(session, dispute, DisputeStatus.WITHDRAWN, actor=actor)


def _restore_invoice(session: Session, dispute: Dispute) -> InvoiceStatus | None:
    """Give the invoice back the status its payments imply, unless another dispute holds it.

    Reminders are not re-planned here: the next reminder run sees an open invoice again.
    """
    invoice = dispute.invoice
    if invoice.status is not InvoiceStatus.DISPUTED:
        return None
    holding = session.scalar(sa.select(sa.func.count()).select_from(Dispute).where(
        Dispute.invoice_id == invoice.id, Dispute.id != dispute.id,
        sa.or_(Dispute.status.in_(ACTIVE_DISPUTE),
               Dispute.resolution == DisputeResolution.ACCEPTED)))
    if holding:
        return None
    before = dispute.invoice_status_before
    invoice.status = (status_for(invoice.payable_amount, amount_paid(session, invoice))
                      if before in PAYMENT_DRIVEN else before)
    session.flush()
    return invoice.status
