"""Keeps distribution's recipients and addresses in step with the portal's customers.

A customer is recipient ``customer:<id>``; their contacts' email addresses, the
addresses they verified in the portal, and their Peppol ID become addresses. An
address the customer removed in the portal stays removed, and an address that
bounced stays dead (a sync never revives it). Called in the same transaction as the
change, and before every run for all of its customers at once
(:func:`sync_customers`), so a run never misses a new contact.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from distribution.bulk import among
from distribution.channels.base import ChannelName
from distribution.recipients import Recipient, add_address, upsert_recipient
from portal.models import Customer, CustomerEmailAddress

CHUNK = 5000


def recipient_key(customer: Customer | int) -> str:
    """The key distribution knows a customer (or a customer id) by."""
    return f"customer:{customer if isinstance(customer, int) else customer.id}"


def sync_customer(session: Session, customer: Customer, *, actor: str) -> Recipient:
    """Create or update the customer's recipient and add any new address."""
    recipient = upsert_recipient(session, recipient_key(customer), name=customer.name,
                                 language=customer.language, time_zone=customer.time_zone)
    managed = session.scalars(sa.select(CustomerEmailAddress).where(
        CustomerEmailAddress.customer_id == customer.id)).all() if customer.id else []
    _add_addresses(session, customer, recipient, managed, actor)
    return recipient


def sync_customers(session: Session, customers: Collection[Customer], *, actor: str) -> None:
    """:func:`sync_customer` for many customers, with a few queries per thousands of them.

    A run over a million invoices syncs its 200,000 customers first; one by one
    that is a million queries. Here the recipients (with their addresses) and the
    portal-managed addresses are read in chunks, and only what changed is written.
    """
    ordered = sorted(customers, key=lambda customer: customer.id)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start:start + CHUNK]
        keys = {recipient_key(customer): customer for customer in chunk}
        recipients = {r.recipient_key: r for r in session.scalars(
            sa.select(Recipient).options(selectinload(Recipient.addresses))
            .where(among(session, Recipient.recipient_key, list(keys))))}
        managed: dict[int, list[CustomerEmailAddress]] = {}
        for row in session.scalars(sa.select(CustomerEmailAddress).where(
                among(session, CustomerEmailAddress.customer_id, [c.id for c in chunk]))):
            managed.setdefault(row.customer_id, []).append(row)
        for key, customer in keys.items():
            recipient = recipients.get(key)
            if recipient is None:
                recipient = upsert_recipient(session, key, name=customer.name,
                                             language=customer.language,
                                             time_zone=customer.time_zone)
            elif (recipient.name, recipient.language, recipient.time_zone) != (
                    customer.name, customer.language, customer.time_zone):
                recipient.name, recipient.language, recipient.time_zone = (
                    customer.name, customer.language, customer.time_zone)
            _add_addresses(session, customer, recipient, managed.get(customer.id, []), actor)


def _add_addresses(session: Session, customer: Customer, recipient: Recipient,
                   managed: list[CustomerEmailAddress], actor: str) -> None:
    by_email = {row.email: row for row in managed}
    for contact in customer.contacts:
        email = (contact.email or "").lower()
        if email and not (email in by_email and by_email[email].removed_at is not None):
            # Addresses from the billing system are the customer's own on record.
            add_address(session, recipient, ChannelName.EMAIL, email, verified=True,
                        label=contact.name, actor=actor, revive=False)
    for row in managed:
        if row.verified_at is not None and row.removed_at is None:
            add_address(session, recipient, ChannelName.EMAIL, row.email, verified=True,
                        actor=actor, revive=False)
    if customer.peppol_endpoint_id and customer.peppol_endpoint_scheme:
        add_address(session, recipient, ChannelName.PEPPOL,
                    f"{customer.peppol_endpoint_scheme}:{customer.peppol_endpoint_id}",
                    verified=True, actor=actor, revive=False)
