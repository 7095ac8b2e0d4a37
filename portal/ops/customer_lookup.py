"""Customer lookup for support agents: find a customer, see everything, resend, new link.

"I never got my invoice": the agent finds the caller by what they can tell
(an email address, a phone number, a customer, account or invoice number), sees
on one page where Herald tried to reach them and what happened, and can resend
the document to an address the customer verified or give them a fresh
"review & pay" link.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from babel.dates import format_date
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, Message
from distribution.events import record_event
from distribution.operator_actions import send_now
from distribution.preferences import Preference
from distribution.recipients import Address, Recipient
from distribution.sqltypes import utcnow
from portal.i18n import FORMAT_LOCALES
from portal.invoices.queries import open_balances
from portal.issuing import invoice_key
from portal.models import (
    Account,
    Contact,
    Customer,
    CustomerEmailAddress,
    Dispute,
    Invoice,
    InvoiceStatus,
    Payment,
    SignatureRequest,
)
from portal.pay.links import issue_link, link_url
from portal.pay.recovery import TEXTS, LinkEmail
from portal.recipients_sync import recipient_key, sync_customer
from portal.runs import SENDABLE, message_spec

MAX_RESULTS = 50
RECENT = 30
RESEND_PREFIX = "resend"
_PHONE_NOISE = (" ", "-", ".", "(", ")", "/")


class LookupError_(ValueError):
    """The request names something the customer does not have (translated: request only)."""


@dataclass
class Match:
    """A customer found, and by what."""

    customer: Customer
    matched_by: set[str] = field(default_factory=set)


def _digits(column):
    for noise in _PHONE_NOISE:
        column = sa.func.replace(column, noise, "")
    return column


def normalise_phone(value: str) -> str:
    """A phone number without spaces, dashes, dots, brackets or slashes."""
    for noise in _PHONE_NOISE:
        value = value.replace(noise, "")
    return value


def find_customers(session: Session, query: str) -> list[Match]:
    """Customers whose email, phone, customer, account or invoice number is ``query``."""
    text = query.strip()
    if not text:
        return []
    lowered = text.lower()
    found: dict[int, set[str]] = {}

    def add(ids, how: str) -> None:
        for customer_id in ids:
            if customer_id is not None:
                found.setdefault(customer_id, set()).add(how)

    add(session.scalars(sa.select(Customer.id).where(Customer.number == text)), "customer")
    add(session.scalars(sa.select(Account.customer_id).where(Account.number == text)), "account")
    add(session.scalars(sa.select(Invoice.customer_id).where(Invoice.number == text)), "invoice")
    if "@" in text:
        add(session.scalars(sa.select(Contact.customer_id).where(
            sa.func.lower(Contact.email) == lowered)), "email")
        add(session.scalars(sa.select(CustomerEmailAddress.customer_id).where(
            sa.func.lower(CustomerEmailAddress.email) == lowered)), "email")
        keys = session.scalars(sa.select(Recipient.recipient_key).join(
            Address, Address.recipient_id == Recipient.id).where(
            Address.channel == ChannelName.EMAIL, sa.func.lower(Address.value) == lowered))
        add((int(k.split(":", 1)[1]) for k in keys if k.startswith("customer:")
             and k.split(":", 1)[1].isdigit()), "email")
    phone = normalise_phone(text)
    if len(phone) >= 6 and phone.lstrip("+").isdigit():
        add(session.scalars(sa.select(Contact.customer_id).where(
            Contact.phone.is_not(None), _digits(Contact.phone) == phone)), "phone")
    if not found:
        return []
    customers = session.scalars(sa.select(Customer).where(Customer.id.in_(list(found)))
                                .order_by(Customer.name, Customer.id).limit(MAX_RESULTS))
    return [Match(customer, found[customer.id]) for customer in customers]


def recipient_of(session: Session, customer: Customer) -> Recipient | None:
    """The customer's recipient in distribution, if Herald ever wrote to them."""
    return session.scalars(sa.select(Recipient).where(
        Recipient.recipient_key == recipient_key(customer))).first()


@dataclass
class CustomerFile:
    """Everything the customer page shows."""

    customer: Customer
    recipient: Recipient | None
    addresses: list[Address]
    preferences: list[Preference]
    deliveries: list[sa.Row]
    invoices: list[Invoice]
    balances: dict[int, Decimal]
    payments: list[Payment]
    signatures: list[SignatureRequest]
    disputes: list[Dispute]


def customer_file(session: Session, customer: Customer) -> CustomerFile:
    """The customer's contacts, channels, deliveries, documents, money and requests."""
    recipient = recipient_of(session, customer)
    addresses = list(recipient.addresses) if recipient else []
    preferences = list(session.scalars(sa.select(Preference).where(
        Preference.recipient_id == recipient.id).order_by(Preference.message_type))) \
        if recipient else []
    deliveries = session.execute(
        sa.select(Delivery.id, Delivery.channel, Delivery.state, Delivery.updated_at,
                  Delivery.attempts, Delivery.last_error, Message.message_type,
                  Message.subject_key, Address.value.label("address"))
        .join(Message, Message.id == Delivery.message_id)
        .outerjoin(Address, Address.id == Delivery.address_id)
        .where(Message.recipient_id == recipient.id)
        .order_by(Delivery.id.desc()).limit(RECENT)).all() if recipient else []
    invoices = list(session.scalars(sa.select(Invoice).where(
        Invoice.customer_id == customer.id, Invoice.status != InvoiceStatus.DRAFT)
        .order_by(Invoice.issue_date.desc(), Invoice.id.desc()).limit(100)))
    invoice_ids = [i.id for i in invoices]
    payments = list(session.scalars(sa.select(Payment).where(sa.or_(
        Payment.customer_id == customer.id,
        Payment.invoice_id.in_(invoice_ids) if invoice_ids else sa.false()))
        .order_by(Payment.received_at.desc(), Payment.id.desc()).limit(100)))
    signatures = list(session.scalars(sa.select(SignatureRequest).where(
        SignatureRequest.customer_id == customer.id).order_by(SignatureRequest.id.desc())
        .limit(50)))
    disputes = list(session.scalars(sa.select(Dispute).where(
        Dispute.customer_id == customer.id).order_by(Dispute.id.desc()).limit(50)))
    return CustomerFile(customer, recipient, addresses, preferences, deliveries, invoices,
                        open_balances(session, invoices), payments, signatures, disputes)


def resend_targets(addresses: list[Address]) -> list[Address]:
    """Addresses a document may be resent to: verified email, or another working channel."""
    return [a for a in addresses if a.dead_since is None
            and (a.verified_at is not None or a.channel is not ChannelName.EMAIL)]


def sendable_documents(invoices: list[Invoice]) -> list[Invoice]:
    """The customer's issued documents that can be sent."""
    return [i for i in invoices if i.ubl_sha256 and i.status in SENDABLE]


def resend_document(session: Session, customer: Customer, invoice: Invoice, target: str, *,
                    reason: str, actor: str, public_url: str, link_days: int) -> Delivery:
    """Send ``invoice`` again now, as a new message, to ``target`` (an address id or "portal").

    The message carries a fresh "review & pay" link (earlier links keep working:
    the customer may still have the first message). Logged on the invoice with
    the agent, the reason and the address. Flushes, never commits.
    """
    if invoice.customer_id != customer.id or invoice not in sendable_documents([invoice]):
        raise LookupError_(_("Choose one of the customer's issued documents."))
    recipient = sync_customer(session, customer, actor=actor)
    session.flush()
    session.expire(recipient, ["addresses"])
    if target == ChannelName.PORTAL.value:
        channel, address = ChannelName.PORTAL, None
    else:
        address = next((a for a in resend_targets(list(recipient.addresses))
                        if str(a.id) == target), None)
        if address is None:
            raise LookupError_(_("Choose a verified address of this customer that works."))
        channel = address.channel
    _link, token = issue_link(session, invoice, days=link_days, purpose="resend", actor=actor)
    spec = message_spec(invoice, public_url, link_url(public_url, token))
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
    spec = dataclasses.replace(
        spec, subject_key=f"{RESEND_PREFIX}:{invoice_key(invoice)}:{stamp}"[:160])
    delivery = send_now(session, spec, message_type=invoice.kind.value, channel=channel,
                        address=address, actor=actor, reason=reason)
    record_event(session, "invoice", invoice_key(invoice), "invoice.resent_by_support",
                 {"reason": reason, "channel": channel.value,
                  "address_id": address.id if address else None,
                  "address": _shown_address(address), "delivery_id": delivery.id},
                 actor=actor)
    return delivery


def _shown_address(address: Address | None) -> str | None:
    # An email or Peppol id says where it went; a push subscription is a long secret-ish
    # endpoint, so only its label is logged.
    if address is None:
        return None
    if address.channel in (ChannelName.EMAIL, ChannelName.PEPPOL):
        return address.value
    return address.label or f"{address.channel.value} address {address.id}"


def link_email_targets(addresses: list[Address]) -> list[Address]:
    """Verified, working email addresses a new link may be emailed to."""
    return [a for a in addresses if a.channel is ChannelName.EMAIL
            and a.verified_at is not None and a.dead_since is None]


@dataclass(frozen=True, slots=True)
class NewLink:
    """A link just issued: its URL (shown once) and the email taking it, if any."""

    url: str
    expires_at: datetime
    email: LinkEmail | None


def new_pay_link(session: Session, customer: Customer, invoice: Invoice, target: str, *,
                 actor: str, public_url: str, link_days: int) -> NewLink:
    """A new "review & pay" link (every earlier one revoked), to show or to email.

    ``target`` is "show" or the id of a verified email address. Flushes, never commits.
    """
    if invoice.customer_id != customer.id or not invoice.ubl_sha256:
        raise LookupError_(_("Choose one of the customer's issued documents."))
    address = None
    if target != "show":
        recipient = sync_customer(session, customer, actor=actor)
        session.flush()
        session.expire(recipient, ["addresses"])
        address = next((a for a in link_email_targets(list(recipient.addresses))
                        if str(a.id) == target), None)
        if address is None:
            raise LookupError_(_("Choose a verified email address of this customer."))
    link, token = issue_link(session, invoice, days=link_days, purpose="operator", actor=actor,
                             revoke_previous=True)
    url = link_url(public_url, token)
    record_event(session, "invoice", invoice_key(invoice), "pay_link.handed_over",
                 {"link_id": link.id, "how": "email" if address else "shown",
                  "address": address.value if address else None}, actor=actor)
    email = None
    if address is not None:
        language = customer.language if customer.language in TEXTS else "en"
        subject, body = TEXTS[language]
        expires = format_date(link.expires_at.date(), "long",
                              locale=FORMAT_LOCALES.get(language, "en_GB"))
        values = {"number": invoice.number, "seller": invoice.organisation.display_name,
                  "link": url, "expires": expires}
        email = LinkEmail(link.id, address.value, language, subject.format(**values),
                          body.format(**values), url)
    return NewLink(url, link.expires_at, email)
