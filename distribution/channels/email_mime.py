"""The email a delivery becomes: MIME structure, headers, and the DKIM signature.

:func:`build_mime` gives the message as an :class:`~email.message.EmailMessage`
(for tests and the ops console); :func:`render_message` gives the exact bytes put
on the wire, DKIM-signed when a key is configured. Signing works on those bytes
and not on the object, because re-serialising a signed object may fold headers
differently and break the signature.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import dkim

from distribution.channels.base import OutgoingMessage
from distribution.channels.email_settings import SmtpSettings, SmtpSettingsError

# RFC 5322 dot-atom-text: what may stand left of the "@" in a Message-ID.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
# Everything Python's str.splitlines() breaks on: the email package refuses all of them in
# a header value (a form feed in a file name was enough to fail a send).
_LINE_BREAKS = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+")
# Line breaks and the other control characters: none belongs in a header value.
_CONTROLS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]+")

# Headers the signature covers. "from" twice: the second, absent instance is
# signed as empty, so a From added in transit breaks the signature.
DKIM_SIGNED_HEADERS = (
    b"from", b"from", b"to", b"reply-to", b"subject", b"date", b"message-id",
    b"content-language", b"auto-submitted", b"mime-version", b"content-type",
    b"content-transfer-encoding", b"x-herald-delivery",
)


class AddressError(ValueError):
    """The recipient's address cannot be written into an email."""


def message_id(message: OutgoingMessage, settings: SmtpSettings) -> str:
    """The deterministic ``Message-ID`` of a delivery, angle brackets included.

    A resend after a crash carries the same id, so receivers that de-duplicate
    (and people reading threads) see one message. A key that is not a valid
    dot-atom is replaced by its SHA-256, still deterministic.
    """
    key = message.idempotency_key
    if not _DOT_ATOM.fullmatch(key):
        key = "h." + hashlib.sha256(key.encode()).hexdigest()
    return f"<{key}@{settings.message_id_domain}>"


def recipient_address(message: OutgoingMessage) -> Address:
    """The ``To`` address, the domain IDNA-encoded; raises :class:`AddressError`."""
    local, at, domain = message.address.strip().rpartition("@")
    if not at or not local or not domain or _LINE_BREAKS.search(message.address):
        raise AddressError(f"malformed email address {message.address!r}")
    if not local.isascii():
        # An internationalised mailbox needs SMTPUTF8 end to end; not supported yet.
        raise AddressError(f"email address {message.address!r} has a non-ASCII local part")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise AddressError(f"email address {message.address!r} has an invalid domain") from None
    try:
        return Address(display_name=_one_line(message.recipient_name),
                       username=local, domain=ascii_domain)
    except (ValueError, IndexError) as error:
        raise AddressError(f"malformed email address {message.address!r}: {error}") from None


def build_mime(message: OutgoingMessage, settings: SmtpSettings, *,
               now: datetime | None = None) -> EmailMessage:
    """Build the unsigned email of one delivery.

    ``multipart/mixed`` holding ``multipart/alternative`` (text, and HTML when
    given) and the attachments; without attachments the body alone. Bodies are
    quoted-printable so that the message is 7-bit clean: no relay needs 8BITMIME
    and none rewrites the body, which would break the DKIM body hash.
    """
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = Address(display_name=_one_line(settings.from_name),
                           addr_spec=settings.from_address)
    mail["To"] = recipient_address(message)
    if settings.reply_to:
        mail["Reply-To"] = settings.reply_to
    mail["Subject"] = _one_line(message.subject)
    mail["Date"] = format_datetime(now or datetime.now(UTC))
    mail["Message-ID"] = message_id(message, settings)
    # RFC 3834: tells auto-responders (out-of-office) not to answer invoices.
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Herald-Delivery"] = str(message.delivery_id)

    mail.set_content(message.text, cte=_text_cte(message.text))
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html", cte=_text_cte(message.html))
    for attachment in message.attachments:
        maintype, _, subtype = attachment.media_type.partition("/")
        mail.add_attachment(attachment.content, maintype=maintype or "application",
                            subtype=subtype or "octet-stream",
                            filename=_safe_filename(attachment.filename))
    if message.language:
        # Set last: turning the message multipart moves every Content-* header
        # set before into the first body part.
        mail["Content-Language"] = _one_line(message.language)
    return mail


def render_message(message: OutgoingMessage, settings: SmtpSettings, *,
                   now: datetime | None = None) -> bytes:
    """The wire bytes of one delivery (CRLF line ends), DKIM-signed when configured."""
    raw = build_mime(message, settings, now=now).as_bytes(policy=policy.SMTP)
    if not settings.dkim_enabled:
        return raw
    assert settings.dkim_selector and settings.dkim_domain and settings.dkim_private_key
    signature = dkim.sign(
        raw,
        settings.dkim_selector.encode("ascii"),
        settings.dkim_domain.encode("ascii"),
        settings.dkim_private_key,
        include_headers=list(DKIM_SIGNED_HEADERS),
    )
    return signature + raw


def check_dkim_key(settings: SmtpSettings) -> None:
    """Sign a small probe so that an unusable DKIM key fails at start, not on every send."""
    if not settings.dkim_enabled:
        return
    assert settings.dkim_selector and settings.dkim_domain and settings.dkim_private_key
    probe = b"From: probe@example.invalid\r\nSubject: probe\r\n\r\nprobe\r\n"
    try:
        dkim.sign(probe, settings.dkim_selector.encode("ascii"),
                  settings.dkim_domain.encode("ascii"), settings.dkim_private_key)
    except (dkim.DKIMException, ValueError, UnicodeError) as error:
        raise SmtpSettingsError(
            f"the DKIM private key cannot sign ({error}); use an RSA key in PEM form "
            "(PKCS#1 or PKCS#8), e.g. from 'openssl genrsa 2048'") from None


def _one_line(value: str) -> str:
    # A line break in a header value would let a customer's name or a subject
    # inject headers; the email package refuses them, so flatten first.
    return _CONTROLS.sub(" ", value).strip()


def _text_cte(text: str) -> str:
    # Plain ASCII with short lines goes as is (readable in raw form); anything
    # else quoted-printable, which keeps it 7-bit and lines under 998 octets.
    short_lines = all(len(line) <= 900 for line in text.splitlines())
    return "7bit" if text.isascii() and short_lines else "quoted-printable"


def _safe_filename(name: str) -> str:
    # Keep only the last path component: a receiver must not see directories.
    name = _one_line(name).replace("\\", "/").rsplit("/", 1)[-1]
    return name or "attachment"
