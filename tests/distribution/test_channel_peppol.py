"""The Peppol channel hands an access point only documents that declare Peppol BIS."""

from __future__ import annotations

import pytest

from distribution.channels.base import Attachment, ChannelError, ErrorKind, OutgoingMessage
from distribution.channels.peppol import PeppolFolderChannel
from einvoice import Document, write_ubl
from einvoice.model import EN16931_CUSTOMIZATION_ID
from tests.einvoice.conftest import buyer, line, seller


def _ubl(**overrides) -> bytes:
    from datetime import date

    return write_ubl(Document(number="INV-P-1", issue_date=date(2026, 11, 1),
                              due_date=date(2026, 11, 30), currency="EUR", seller=seller(),
                              buyer=buyer(), buyer_reference="PO-1", lines=[line(1)],
                              **overrides))


def _message(ubl: bytes) -> OutgoingMessage:
    return OutgoingMessage(
        delivery_id=1, idempotency_key="d-1", message_type="invoice",
        address="0106:12345678", recipient_name="Koper BV", language="nl",
        subject="Invoice INV-P-1", text="",
        attachments=(Attachment("INV-P-1.xml", "application/xml", ubl),))


def test_a_peppol_bis_document_goes_into_the_outbox(tmp_path):
    ubl = _ubl()
    PeppolFolderChannel(tmp_path).send(_message(ubl))
    assert (tmp_path / "d-1.xml").read_bytes() == ubl


def test_a_document_declaring_en16931_alone_is_refused_for_good(tmp_path):
    """Issued before the customer had a Peppol ID: an access point would refuse it."""
    ubl = _ubl(customization_id=EN16931_CUSTOMIZATION_ID, profile_id="")
    with pytest.raises(ChannelError) as refused:
        PeppolFolderChannel(tmp_path).send(_message(ubl))
    assert refused.value.kind is ErrorKind.PERMANENT
    assert "not Peppol BIS Billing 3.0" in refused.value.reason
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_an_unreadable_document_is_refused_for_good(tmp_path):
    message = _message(b"not xml")
    with pytest.raises(ChannelError) as refused:
        PeppolFolderChannel(tmp_path).send(message)
    assert refused.value.kind is ErrorKind.PERMANENT
