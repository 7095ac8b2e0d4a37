"""The customer's Peppol participant ID: where e-invoices go.

The ID is kept on the customer record (it is also the buyer's electronic
address in every UBL invoice, and a Peppol access point delivers by it) and as
the distribution address the Peppol channel sends to. A replaced or removed ID
is marked dead with the reason, never deleted, so past deliveries keep theirs.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from distribution.channels.base import ChannelName
from distribution.events import record_event
from distribution.recipients import Address, Recipient, add_address, mark_dead
from portal.models import Customer
from portal.preferences.peppol_ids import PeppolId


def current_peppol_address(recipient: Recipient) -> Address | None:
    """The Peppol address in use, if any."""
    working = recipient.working_addresses(ChannelName.PEPPOL)
    return working[0] if working else None


def set_peppol_id(session: Session, customer: Customer, recipient: Recipient,
                  peppol_id: PeppolId | None, *, actor: str) -> bool:
    """Use ``peppol_id`` (``None`` removes it); return True when something changed."""
    old = current_peppol_address(recipient)
    new_value = str(peppol_id) if peppol_id else None
    if (old.value if old else None) == new_value:
        return False
    for address in recipient.working_addresses(ChannelName.PEPPOL):
        mark_dead(session, address, "replaced by the customer" if peppol_id
                  else "removed by the customer", actor=actor)
    customer.peppol_endpoint_scheme = peppol_id.scheme if peppol_id else None
    customer.peppol_endpoint_id = peppol_id.identifier if peppol_id else None
    if peppol_id is not None:
        add_address(session, recipient, ChannelName.PEPPOL, new_value, verified=True,
                    actor=actor)
    record_event(session, "recipient", recipient.recipient_key, "peppol_id.changed",
                 {"old": old.value if old else None, "new": new_value}, actor=actor)
    session.flush()
    return True


def set_embed_pdf(session: Session, customer: Customer, recipient: Recipient, wanted: bool,
                  *, actor: str) -> bool:
    """Put the PDF inside the UBL sent to this customer, or stop; True when it changed.

    Applies to what is sent from now on (Peppol, and the UBL attached to emails): the
    stored UBL stays as issued, the PDF is embedded when a message is sent.
    """
    if customer.embed_pdf_in_ubl == wanted:
        return False
    customer.embed_pdf_in_ubl = wanted
    record_event(session, "recipient", recipient.recipient_key, "embed_pdf_in_ubl.changed",
                 {"old": not wanted, "new": wanted}, actor=actor)
    session.flush()
    return True
