"""Keeps distribution's recipients and addresses in step with the portal's customers.

A customer is recipient ``customer:<id>``; their contacts' email addresses, the
addresses they verified in the portal, and their Peppol ID become addresses. An
address the customer removed in the portal stays removed. Called in the same
transaction as the change (and before every run, so a run never misses a new contact).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from distribution.channels.base import ChannelName
from distribution.recipients import Recipient, add_address, upsert_recipient
from portal.models import Customer, CustomerEmailAddress


def recipient_key(customer: Customer | int) -> str:
    """The key distribution knows a customer (or a customer id) by."""
    return f"customer:{customer if isinstance(customer, int) else customer.id}"


def sync_customer(session: Session, customer: Customer, *, actor: str) -> Recipient:
    """Create or update the customer's recipient and add any new address."""
    recipient = upsert_recipient(session, recipient_key(customer), name=customer.name,
                                 language=customer.language, time_zone=customer.time_zone)
    managed = {row.email: row for row in session.scalars(sa.select(CustomerEmailAddress).where(
        CustomerEmailAddress.customer_id == customer.id))} if customer.id else {}
    for contact in customer.contacts:
        email = (contact.email or "").lower()
        if email and not (email in managed and managed[email].removed_at is not None):
            # Addresses from the billing system are the customer's own on record.
            add_address(session, recipient, ChannelName.EMAIL, email,
                        verified=True, label=contact.name, actor=actor)
    for row in managed.values():
        if row.verified_at is not None and row.removed_at is None:
            add_address(session, recipient, ChannelName.EMAIL, row.email, verified=True,
                        actor=actor)
    if customer.peppol_endpoint_id and customer.peppol_endpoint_scheme:
        add_address(session, recipient, ChannelName.PEPPOL,
                    f"{customer.peppol_endpoint_scheme}:{customer.peppol_endpoint_id}",
                    verified=True, actor=actor)
    return recipient
