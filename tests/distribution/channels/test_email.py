"""The email channel against a real SMTP server (aiosmtpd on 127.0.0.1).

Every assertion is on what the server received, parsed with the ``email``
package: structure, headers, attachments byte for byte, the DKIM signature.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from email import policy
from email.message import EmailMessage

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from distribution.channels.base import (
    Attachment,
    Channel,
    ChannelError,
    ChannelName,
    ErrorKind,
    OutgoingMessage,
)
from distribution.channels.email import (
    EmailChannel,
    SmtpSettings,
    SmtpSettingsError,
    build_mime,
    classify_reply,
    render_message,
)
from tests.peers import smtp as peers
from tests.peers.smtp import SmtpPeer, TlsCertificate

smtp_peer = peers.smtp_peer
smtp_tls_certificate = peers.smtp_tls_certificate

LINK = "https://portal.herald.test/i/9f3a2c?lang=fr&utm=mail"
# Not valid PDF, but every byte value and line-ending shape, which is what
# base64 and a sloppy line-ending fix would break.
PDF = b"%PDF-1.7\r\n" + bytes(range(256)) * 40 + b"\n.\r\n.\n%%EOF\n"
UBL = ('<?xml version="1.0" encoding="UTF-8"?>\n<Invoice xmlns="urn:oasis:names:specification:'
       'ubl:schema:xsd:Invoice-2"><cbc:ID>F-2026-0042</cbc:ID><Note>Zoë &amp; fils</Note>'
       '</Invoice>\n').encode()


def make_message(**changes: object) -> OutgoingMessage:
    """A French invoice email with PDF and UBL, as the engine hands it over."""
    message = OutgoingMessage(
        delivery_id=4711,
        idempotency_key="d4711.a1b2c3",
        message_type="invoice",
        address="zoe@example.com",
        recipient_name="Zoë Ångström, \"Fils & Cie\"",
        language="fr",
        subject="Facture n° F-2026-0042 – échéance 30 déc.",
        text=f"Bonjour Zoë,\n\nVotre facture F-2026-0042 : 1 234,50 €.\n"
             f"Consulter et payer : {LINK}\n\n.\nHerald\n",
        html=f'<p>Bonjour Zoë,</p><p><a href="{LINK}">Consulter et payer</a></p>',
        link=LINK,
        attachments=(
            Attachment("F-2026-0042.pdf", "application/pdf", PDF),
            Attachment("F-2026-0042.xml", "application/xml", UBL),
        ),
    )
    return replace(message, **changes)  # type: ignore[arg-type]


def settings_for(peer: SmtpPeer, **changes: object) -> SmtpSettings:
    """Settings pointing at ``peer``, plain SMTP, short timeout."""
    settings = SmtpSettings(
        host=peer.host, port=peer.port, from_address="factures@herald.test",
        from_name="Herald Facturation", message_id_domain="mail.herald.test", timeout=5,
        reply_to="service@herald.test")
    return replace(settings, **changes)  # type: ignore[arg-type]


@pytest.fixture
def channel(smtp_peer: SmtpPeer) -> Iterator[EmailChannel]:
    """An email channel sending to the plain peer."""
    with EmailChannel(settings_for(smtp_peer)) as email_channel:
        yield email_channel


def only_message(peer: SmtpPeer) -> EmailMessage:
    assert len(peer.messages) == 1
    return peer.messages[0].parsed()


def send_failure(channel: EmailChannel, message: OutgoingMessage | None = None) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        channel.send(message or make_message())
    return caught.value


# -- what arrives ----------------------------------------------------------------

def test_channel_fits_the_protocol(channel: EmailChannel) -> None:
    assert isinstance(channel, EmailChannel)
    as_channel: Channel = channel
    assert as_channel.name is ChannelName.EMAIL


def test_peer_receives_the_invoice_with_its_attachments(
        channel: EmailChannel, smtp_peer: SmtpPeer) -> None:
    receipt = channel.send(make_message())

    received = smtp_peer.messages[0]
    assert received.mail_from == "factures@herald.test"
    assert received.rcpt_tos == ("zoe@example.com",)
    mail = only_message(smtp_peer)
    assert mail.get_content_type() == "multipart/mixed"
    body, pdf, ubl = mail.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    text, html = body.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert LINK in text.get_content()
    assert "1 234,50 €" in text.get_content()
    assert f'href="{LINK}"' in html.get_content()
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == "F-2026-0042.pdf"
    assert pdf.get_content_disposition() == "attachment"
    assert pdf.get_content() == PDF
    assert ubl.get_content_type() == "application/xml"
    assert ubl.get_filename() == "F-2026-0042.xml"
    assert ubl.get_payload(decode=True) == UBL

    assert receipt.provider_message_id == "<d4711.a1b2c3@mail.herald.test>"
    assert receipt.detail["smtp_code"] == 250
    assert "queued as peer-1" in receipt.detail["smtp_reply"]


def test_headers_are_encoded_and_deterministic(
        channel: EmailChannel, smtp_peer: SmtpPeer) -> None:
    channel.send(make_message())
    raw = smtp_peer.messages[0].data
    assert raw.isascii()  # 7-bit clean: no relay needs 8BITMIME or SMTPUTF8
    mail = only_message(smtp_peer)
    assert mail["Message-ID"] == "<d4711.a1b2c3@mail.herald.test>"
    assert mail["Subject"] == "Facture n° F-2026-0042 – échéance 30 déc."
    to = mail["To"].addresses[0]
    assert (to.display_name, to.addr_spec) == ('Zoë Ångström, "Fils & Cie"', "zoe@example.com")
    sender = mail["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("Herald Facturation",
                                                       "factures@herald.test")
    assert mail["Reply-To"] == "service@herald.test"
    assert mail["Content-Language"] == "fr"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["X-Herald-Delivery"] == "4711"
    assert mail["Date"].datetime is not None
    assert "List-Unsubscribe" not in mail


def test_resend_carries_the_same_message_id(channel: EmailChannel, smtp_peer: SmtpPeer) -> None:
    first = channel.send(make_message())
    second = channel.send(make_message())
    assert first.provider_message_id == second.provider_message_id
    ids = {m.parsed()["Message-ID"] for m in smtp_peer.messages}
    assert ids == {"<d4711.a1b2c3@mail.herald.test>"}


def test_text_only_message_is_a_single_part() -> None:
    peer = SmtpPeer()  # never started: build_mime needs no server
    mail = build_mime(make_message(html=None, attachments=()), settings_for(peer))
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"


def test_key_that_is_not_a_dot_atom_is_hashed_deterministically() -> None:
    settings = settings_for(SmtpPeer())
    first = build_mime(make_message(idempotency_key="run 7/delivery <9>"), settings)
    again = build_mime(make_message(idempotency_key="run 7/delivery <9>"), settings)
    other = build_mime(make_message(idempotency_key="run 7/delivery <10>"), settings)
    assert first["Message-ID"] == again["Message-ID"] != other["Message-ID"]
    assert first["Message-ID"].startswith("<h.")
    assert first["Message-ID"].endswith("@mail.herald.test>")


def test_line_breaks_cannot_inject_headers(channel: EmailChannel, smtp_peer: SmtpPeer) -> None:
    channel.send(make_message(subject="Facture\r\nBcc: victim@example.org",
                              recipient_name="Zoë\nCc: other@example.org"))
    mail = only_message(smtp_peer)
    assert "Bcc" not in mail and "Cc" not in mail
    assert mail["Subject"] == "Facture Bcc: victim@example.org"
    assert smtp_peer.messages[0].rcpt_tos == ("zoe@example.com",)


def test_attachment_filename_loses_its_directories() -> None:
    attachment = Attachment("../../etc/Facture été.pdf", "application/pdf", b"%PDF")
    mail = build_mime(make_message(attachments=(attachment,)), settings_for(SmtpPeer()))
    assert [part.get_filename() for part in mail.iter_attachments()] == ["Facture été.pdf"]


def test_international_domain_is_sent_as_punycode(
        channel: EmailChannel, smtp_peer: SmtpPeer) -> None:
    channel.send(make_message(address="zoe@bücher.example"))
    assert smtp_peer.messages[0].rcpt_tos == ("zoe@xn--bcher-kva.example",)


@pytest.mark.parametrize("address", ["not-an-address", "@example.com", "zoé@example.com"])
def test_unusable_address_is_dead_and_nothing_is_sent(
        channel: EmailChannel, smtp_peer: SmtpPeer, address: str) -> None:
    error = send_failure(channel, make_message(address=address))
    assert error.kind is ErrorKind.ADDRESS_DEAD
    assert smtp_peer.messages == [] and smtp_peer.connections == 0


# -- DKIM ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dkim_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def dns_for(key: rsa.RSAPrivateKey, name: bytes) -> Callable[..., bytes | None]:
    """A stand-in resolver serving the DKIM TXT record of ``key`` at ``name`` only."""
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dnsfunc(queried: bytes, timeout: int = 5) -> bytes | None:
        return record if queried == name else None

    return dnsfunc


@pytest.mark.parametrize("key_format", [serialization.PrivateFormat.PKCS8,
                                        serialization.PrivateFormat.TraditionalOpenSSL])
def test_dkim_signature_verifies(smtp_peer: SmtpPeer, dkim_key: rsa.RSAPrivateKey,
                                 key_format: serialization.PrivateFormat) -> None:
    pem = dkim_key.private_bytes(serialization.Encoding.PEM, key_format,
                                 serialization.NoEncryption())
    settings = settings_for(smtp_peer, dkim_selector="h2026", dkim_domain="herald.test",
                            dkim_private_key=pem)
    with EmailChannel(settings) as email_channel:
        email_channel.send(make_message())

    raw = smtp_peer.messages[0].data
    dnsfunc = dns_for(dkim_key, b"h2026._domainkey.herald.test.")
    assert dkim.verify(raw, dnsfunc=dnsfunc)
    signature = only_message(smtp_peer)["DKIM-Signature"]
    signed = {h.strip().lower() for h in
              dict(t.strip().split("=", 1) for t in signature.split(";") if "=" in t)["h"]
              .split(":")}
    assert {"from", "to", "subject", "date", "message-id", "mime-version",
            "content-type"} <= signed
    # The check can fail: a changed subject or body no longer verifies.
    assert not dkim.verify(raw.replace(b"Subject: ", b"Subject: Re: ", 1), dnsfunc=dnsfunc)
    assert not dkim.verify(raw.replace(b"payer", b"PAYER", 1), dnsfunc=dnsfunc)


def test_unusable_dkim_key_fails_at_start(smtp_peer: SmtpPeer) -> None:
    settings = settings_for(smtp_peer, dkim_selector="h2026", dkim_domain="herald.test",
                            dkim_private_key=b"-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                             b"-----END PRIVATE KEY-----\n")
    with pytest.raises(SmtpSettingsError, match="DKIM private key cannot sign"):
        EmailChannel(settings)


def test_render_message_without_key_is_the_unsigned_mime() -> None:
    raw = render_message(make_message(), settings_for(SmtpPeer()))
    assert b"DKIM-Signature" not in raw
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


# -- connections, TLS, AUTH --------------------------------------------------------

def test_one_connection_serves_many_sends(channel: EmailChannel, smtp_peer: SmtpPeer) -> None:
    receipts = [channel.send(make_message(delivery_id=n, idempotency_key=f"d{n}"))
                for n in range(5)]
    assert len(smtp_peer.messages) == 5
    assert smtp_peer.connections == 1
    assert [r.detail["reused_connection"] for r in receipts] == [False] + [True] * 4


def test_threads_share_the_connection_safely(channel: EmailChannel, smtp_peer: SmtpPeer) -> None:
    errors: list[BaseException] = []

    def worker(start: int) -> None:
        try:
            for n in range(start, start + 5):
                channel.send(make_message(delivery_id=n, idempotency_key=f"d{n}"))
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(t * 100,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert errors == []
    assert len(smtp_peer.messages) == 20
    assert smtp_peer.connections == 1
    assert {m.parsed()["X-Herald-Delivery"] for m in smtp_peer.messages} == {
        str(t * 100 + n) for t in range(4) for n in range(5)}


def test_connection_closed_by_server_is_reopened(
        channel: EmailChannel, smtp_peer: SmtpPeer) -> None:
    channel.send(make_message(idempotency_key="first"))
    smtp_peer.disconnect_all()
    receipt = channel.send(make_message(idempotency_key="second"))
    assert receipt.provider_message_id == "<second@mail.herald.test>"
    assert len(smtp_peer.messages) == 2
    assert smtp_peer.connections == 2


def test_auth_over_starttls(smtp_peer: SmtpPeer, smtp_tls_certificate: TlsCertificate) -> None:
    smtp_peer.enable_starttls(smtp_tls_certificate.server_context())
    smtp_peer.require_auth("herald", "s3cret-Pw")
    settings = settings_for(smtp_peer, starttls=True, username="herald", password="s3cret-Pw")
    with EmailChannel(settings, ssl_context=smtp_tls_certificate.client_context()) as channel:
        channel.send(make_message())
        channel.send(make_message())
    assert [(m.tls, m.login) for m in smtp_peer.messages] == [(True, "herald")] * 2
    assert smtp_peer.logins == ["herald"]  # one login for the reused connection


def test_implicit_tls(smtp_tls_certificate: TlsCertificate) -> None:
    with SmtpPeer(implicit_tls=smtp_tls_certificate.server_context()) as peer:
        settings = settings_for(peer, ssl=True)
        with EmailChannel(settings, ssl_context=smtp_tls_certificate.client_context()) as ch:
            ch.send(make_message())
        assert len(peer.messages) == 1


def test_wrong_password_is_permanent_and_not_told(
        smtp_peer: SmtpPeer, smtp_tls_certificate: TlsCertificate) -> None:
    smtp_peer.enable_starttls(smtp_tls_certificate.server_context())
    smtp_peer.require_auth("herald", "right-one")
    settings = settings_for(smtp_peer, starttls=True, username="herald", password="Wr0ng-Pw")
    with EmailChannel(settings, ssl_context=smtp_tls_certificate.client_context()) as channel:
        error = send_failure(channel)
    assert error.kind is ErrorKind.PERMANENT
    assert "535" in error.reason and "AUTH" in error.reason
    assert "Wr0ng-Pw" not in f"{error} {error.reason} {error.detail}"
    assert "Wr0ng-Pw" not in repr(settings)
    assert smtp_peer.messages == []


def test_relay_demanding_starttls_refuses_plain_mail(
        smtp_peer: SmtpPeer, smtp_tls_certificate: TlsCertificate) -> None:
    smtp_peer.enable_starttls(smtp_tls_certificate.server_context(), required=True)
    with EmailChannel(settings_for(smtp_peer)) as channel:
        error = send_failure(channel)
    assert error.kind is ErrorKind.PERMANENT
    assert "530" in error.reason


def test_untrusted_certificate_is_permanent(
        smtp_peer: SmtpPeer, smtp_tls_certificate: TlsCertificate) -> None:
    smtp_peer.enable_starttls(smtp_tls_certificate.server_context())
    with EmailChannel(settings_for(smtp_peer, starttls=True)) as channel:  # system trust store
        error = send_failure(channel)
    assert error.kind is ErrorKind.PERMANENT
    assert "certificate" in error.reason
    assert smtp_peer.messages == []


def test_starttls_configured_but_not_offered_is_permanent(smtp_peer: SmtpPeer) -> None:
    with EmailChannel(settings_for(smtp_peer, starttls=True)) as channel:
        error = send_failure(channel)
    assert error.kind is ErrorKind.PERMANENT
    assert "STARTTLS" in error.reason
    assert smtp_peer.messages == []


# -- how failures are classed -------------------------------------------------------

@pytest.mark.parametrize(("stage", "code", "text", "kind"), [
    ("MAIL", 451, "4.3.0 Temporary server error", ErrorKind.RETRYABLE),
    ("RCPT", 450, "4.2.1 Mailbox busy", ErrorKind.RETRYABLE),
    ("RCPT", 452, "4.2.2 Over quota for now", ErrorKind.RETRYABLE),
    ("DATA", 451, "4.7.1 Greylisted, try again", ErrorKind.RETRYABLE),
    ("DATA", 552, "5.3.4 Message too big for system", ErrorKind.PERMANENT),
    ("DATA", 554, "5.7.1 Rejected content", ErrorKind.PERMANENT),
    ("MAIL", 530, "5.7.0 Authentication required", ErrorKind.PERMANENT),
    ("RCPT", 550, "5.1.1 no such user", ErrorKind.ADDRESS_DEAD),
    ("RCPT", 550, "5.7.1 Relaying denied, client host blocked", ErrorKind.PERMANENT),
    ("RCPT", 552, "5.2.2 Mailbox full", ErrorKind.PERMANENT),
])
def test_peer_replies_are_classed(channel: EmailChannel, smtp_peer: SmtpPeer, stage: str,
                                  code: int, text: str, kind: ErrorKind) -> None:
    smtp_peer.fail_next(code, text, at=stage)
    error = send_failure(channel)
    assert error.kind is kind
    assert error.reason == f"SMTP {code} at {stage}: {text}"
    assert error.detail["smtp_code"] == code
    assert "Bonjour" not in str(error)  # never the body
    assert smtp_peer.messages == []
    # The connection was reset, not lost: the next message goes through on it.
    channel.send(make_message())
    assert len(smtp_peer.messages) == 1
    assert smtp_peer.connections == 1


@pytest.mark.parametrize(("reply", "kind"), [
    ("550 5.1.1 <gone@example.com>: no such user", ErrorKind.ADDRESS_DEAD),
    ("551 User not local", ErrorKind.ADDRESS_DEAD),
    ("553 Mailbox name not allowed", ErrorKind.ADDRESS_DEAD),
    ("554 Transaction failed", ErrorKind.PERMANENT),
])
def test_refused_recipient(channel: EmailChannel, smtp_peer: SmtpPeer, reply: str,
                           kind: ErrorKind) -> None:
    smtp_peer.refuse_rcpt("gone@example.com", reply)
    error = send_failure(channel, make_message(address="gone@example.com"))
    assert error.kind is kind
    code, _, text = reply.partition(" ")
    assert error.reason == f"SMTP {code} at RCPT: {text}"
    channel.send(make_message(address="zoe@example.com"))  # others still get theirs
    assert [m.rcpt_tos for m in smtp_peer.messages] == [("zoe@example.com",)]


def test_421_drops_the_connection_and_the_next_send_reconnects(
        channel: EmailChannel, smtp_peer: SmtpPeer) -> None:
    channel.send(make_message())
    smtp_peer.fail_next(421, "4.3.2 Service shutting down", at="MAIL")
    error = send_failure(channel)
    assert error.kind is ErrorKind.RETRYABLE
    assert "421" in error.reason
    channel.send(make_message())
    assert len(smtp_peer.messages) == 2
    assert smtp_peer.connections == 2


def test_peer_down_is_retryable(smtp_peer: SmtpPeer) -> None:
    port = smtp_peer.port
    smtp_peer.stop()
    settings = replace(settings_for(smtp_peer), port=port)
    with EmailChannel(settings) as channel:
        error = send_failure(channel)
    assert error.kind is ErrorKind.RETRYABLE
    assert "ConnectionRefusedError" in error.reason


def test_silent_server_times_out_retryable() -> None:
    # A socket that listens but never accepts: the TCP handshake succeeds (the
    # kernel's backlog) and the greeting never comes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        settings = SmtpSettings(host="127.0.0.1", port=silent.getsockname()[1],
                                from_address="factures@herald.test",
                                message_id_domain="herald.test", timeout=0.3)
        started = time.monotonic()
        with EmailChannel(settings) as channel:
            error = send_failure(channel)
    assert error.kind is ErrorKind.RETRYABLE
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(("code", "reply", "stage", "kind"), [
    (421, "4.7.0 Try again later", "CONNECT", ErrorKind.RETRYABLE),
    (550, "5.1.1 User unknown", "RCPT", ErrorKind.ADDRESS_DEAD),
    (550, "5.1.1 User unknown", "DATA", ErrorKind.PERMANENT),  # not about the address there
    (550, "Requested action not taken: mailbox unavailable", "RCPT", ErrorKind.ADDRESS_DEAD),
    (550, "5.2.1 Mailbox disabled", "RCPT", ErrorKind.ADDRESS_DEAD),
    (554, "5.1.10 Recipient address has null MX", "RCPT", ErrorKind.ADDRESS_DEAD),
    (550, "5.7.26 Unauthenticated email is not accepted", "RCPT", ErrorKind.PERMANENT),
    (535, "5.7.8 Authentication credentials invalid", "AUTH", ErrorKind.PERMANENT),
])
def test_classify_reply(code: int, reply: str, stage: str, kind: ErrorKind) -> None:
    assert classify_reply(code, reply, stage) is kind


def test_message_serialises_with_smtp_policy() -> None:
    mail = build_mime(make_message(), settings_for(SmtpPeer()))
    assert mail.policy.linesep == policy.SMTP.linesep == "\r\n"
