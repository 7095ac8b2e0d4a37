"""Peppol, through an access point: a folder it picks up, or its HTTP API.

Herald does not run a Peppol access point itself. It hands the issued UBL
(which passed the official rules when it was issued) to one, with the
receiver's participant ID (``scheme:identifier``) and a message id that is
deterministic per delivery, so an access point that de-duplicates never sends
one invoice twice.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import requests

from distribution.channels.base import (
    ChannelError,
    ChannelName,
    ErrorKind,
    OutgoingMessage,
    Receipt,
)
from einvoice.errors import UblReadError
from einvoice.ubl import declares_peppol

PARTICIPANT = re.compile(r"^(?P<scheme>[0-9]{4}):(?P<id>[^\s:]{1,64})$")


def _ubl_of(message: OutgoingMessage) -> bytes:
    for attachment in message.attachments:
        if attachment.media_type == "application/xml":
            _check_declares_peppol(attachment.content)
            return attachment.content
    raise ChannelError(ErrorKind.PERMANENT, "no issued UBL document to send; issue the "
                                            "invoice first")


def _check_declares_peppol(ubl: bytes) -> None:
    # A document issued while the customer had no Peppol ID declares EN 16931 alone
    # (its buyer address is an email one): an access point would refuse it, and an
    # issued document is never rewritten.
    try:
        peppol = declares_peppol(ubl)
    except UblReadError as exc:
        raise ChannelError(ErrorKind.PERMANENT, f"the issued UBL cannot be read: {exc}") from exc
    if not peppol:
        raise ChannelError(ErrorKind.PERMANENT, "the issued document declares EN 16931, not "
                           "Peppol BIS Billing 3.0: it was issued before the customer had a "
                           "Peppol ID, so Peppol cannot carry it; send it by another channel")


def _participant(message: OutgoingMessage) -> tuple[str, str]:
    match = PARTICIPANT.match(message.address.strip())
    if match is None:
        raise ChannelError(ErrorKind.ADDRESS_DEAD, f"{message.address!r} is not a Peppol "
                                                   "participant ID (scheme:identifier)")
    return match["scheme"], match["id"]


class PeppolFolderChannel:
    """Writes each document and a small JSON envelope into a folder an access point watches.

    Files appear atomically (written under a temporary name, then renamed), named
    by the delivery's idempotency key, so a resend overwrites instead of duplicating.
    """

    name = ChannelName.PEPPOL

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def send(self, message: OutgoingMessage) -> Receipt:
        """Drop the UBL and its envelope into the outbox."""
        scheme, identifier = _participant(message)
        ubl = _ubl_of(message)
        envelope = {"message_id": message.idempotency_key, "receiver_scheme": scheme,
                    "receiver_id": identifier, "document": f"{message.idempotency_key}.xml",
                    "document_type": message.message_type}
        try:
            self.outbox.mkdir(parents=True, exist_ok=True)
            self._write(f"{message.idempotency_key}.xml", ubl)
            # The envelope last: an access point that reads envelopes never sees half a pair.
            self._write(f"{message.idempotency_key}.json",
                        json.dumps(envelope, indent=2).encode())
        except OSError as exc:
            raise ChannelError(ErrorKind.RETRYABLE,
                               f"cannot write to the Peppol outbox: {exc.strerror}") from exc
        return Receipt(provider_message_id=message.idempotency_key,
                       detail={"outbox": str(self.outbox)})

    def _write(self, name: str, data: bytes) -> None:
        fd, temporary = tempfile.mkstemp(dir=self.outbox, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.outbox / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


class PeppolHttpChannel:
    """Posts the UBL to an access point's HTTP API.

    The generic contract: ``POST {base_url}/outbox`` with the UBL as the body
    (``application/xml``), headers ``X-Peppol-Receiver: scheme:id`` and
    ``Idempotency-Key``; 2xx with an optional JSON ``{"id": ...}`` is accepted,
    404 means the receiver is not on Peppol, 409 that the same key was sent
    before (success), 4xx other refusals, 429/5xx try again later.
    """

    name = ChannelName.PEPPOL

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = session or requests.Session()

    def send(self, message: OutgoingMessage) -> Receipt:
        """Hand the UBL to the access point."""
        scheme, identifier = _participant(message)
        headers = {"Content-Type": "application/xml", "Idempotency-Key": message.idempotency_key,
                   "X-Peppol-Receiver": f"{scheme}:{identifier}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self.session.post(f"{self.base_url}/outbox", data=_ubl_of(message),
                                         headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ChannelError(ErrorKind.RETRYABLE,
                               f"access point unreachable: {type(exc).__name__}") from exc
        status = response.status_code
        if status in (200, 201, 202, 409):
            try:
                provider_id = (response.json() or {}).get("id")
            except ValueError:
                provider_id = None
            return Receipt(provider_message_id=provider_id or message.idempotency_key,
                           detail={"status": status})
        reason = f"access point answered {status}: {response.text[:200]}"
        if status == 404:
            raise ChannelError(ErrorKind.ADDRESS_DEAD, reason)
        if status == 429 or status >= 500:
            retry_after = response.headers.get("Retry-After")
            raise ChannelError(ErrorKind.RETRYABLE, reason,
                               retry_after=float(retry_after) if retry_after
                               and retry_after.isdigit() else None)
        raise ChannelError(ErrorKind.PERMANENT, reason)
