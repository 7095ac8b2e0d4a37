"""The email channel: invoices sent through an SMTP relay.

One SMTP connection per adapter, reused across sends under a lock and reopened
when the server has closed it. Every failure becomes a :class:`ChannelError`:
4xx replies, refused connections, timeouts and disconnects are retryable; a 5xx
on ``RCPT`` that says the mailbox does not exist marks the address dead; any
other 5xx is permanent. Reasons name the SMTP code, the stage and the server's
words, never the password or the message.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import threading
from types import TracebackType

from distribution.channels.base import (
    ChannelError,
    ChannelName,
    ErrorKind,
    OutgoingMessage,
    Receipt,
)
from distribution.channels.email_mime import (
    AddressError,
    build_mime,
    check_dkim_key,
    message_id,
    recipient_address,
    render_message,
)
from distribution.channels.email_settings import SmtpSettings, SmtpSettingsError

__all__ = [
    "EmailChannel",
    "SmtpSettings",
    "SmtpSettingsError",
    "build_mime",
    "classify_reply",
    "render_message",
]

log = logging.getLogger(__name__)

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# Enhanced status X.1.x says "this address": 0 other, 1 no such mailbox, 2 no
# such domain, 3 bad syntax, 6 moved, 10 null MX. 5.2.1 is a disabled mailbox.
_DEAD_ADDRESS_DETAILS = {("1", "0"), ("1", "1"), ("1", "2"), ("1", "3"), ("1", "6"),
                         ("1", "10"), ("2", "1")}
_DEAD_ADDRESS_CODES = {550, 551, 553}
_MAX_REPLY = 300


def classify_reply(code: int, reply: str, stage: str) -> ErrorKind:
    """Class an SMTP failure reply given at ``stage`` (``MAIL``, ``RCPT``, ``DATA``...).

    A 550 on ``RCPT`` with enhanced status 5.7.x is a policy refusal (our relay
    or content is blocked), not a dead mailbox, so it stays permanent rather
    than pruning a good address.
    """
    if 400 <= code < 500:
        return ErrorKind.RETRYABLE
    if code >= 500 and stage == "RCPT":
        enhanced = _ENHANCED.search(reply)
        if enhanced and enhanced.group(1) == "5":
            if (enhanced.group(2), enhanced.group(3)) in _DEAD_ADDRESS_DETAILS:
                return ErrorKind.ADDRESS_DEAD
            return ErrorKind.PERMANENT
        if code in _DEAD_ADDRESS_CODES:
            return ErrorKind.ADDRESS_DEAD
    return ErrorKind.PERMANENT


class _StaleConnection(Exception):
    """A reused connection was found closed before anything of this message was accepted."""


class EmailChannel:
    """Sends :class:`OutgoingMessage` objects as email through the configured SMTP relay.

    Thread-safe: sends through one adapter are serialised on its connection.
    ``ssl_context`` verifies the relay's certificate (default: the system's
    trust store). Call :meth:`close` (or use ``with``) when done. Raises
    :class:`SmtpSettingsError` at once when the DKIM key cannot sign.
    """

    name = ChannelName.EMAIL

    def __init__(self, settings: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None
                 ) -> None:
        check_dkim_key(settings)
        self.settings = settings
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._lock = threading.Lock()
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: OutgoingMessage) -> Receipt:
        """Send one message; return a receipt holding its ``Message-ID`` or raise ChannelError."""
        try:
            recipient = recipient_address(message).addr_spec
        except AddressError as error:
            raise ChannelError(ErrorKind.ADDRESS_DEAD, str(error)) from None
        raw = render_message(message, self.settings)
        mid = message_id(message, self.settings)
        with self._lock:
            code, reply, reused = self._send_locked(recipient, raw, message.delivery_id)
        log.info("email delivery %s accepted: %s %s", message.delivery_id, code, reply)
        return Receipt(provider_message_id=mid,
                       detail={"smtp_code": code, "smtp_reply": reply,
                               "reused_connection": reused})

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        with self._lock:
            self._drop(polite=True)

    def __enter__(self) -> EmailChannel:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _send_locked(self, recipient: str, raw: bytes, delivery_id: int) -> tuple[int, str, bool]:
        # A relay closes idle connections whenever it likes; the first command on
        # a reused one is where that shows, and nothing was sent yet, so one retry
        # on a fresh connection is safe.
        while True:
            reused = self._smtp is not None
            try:
                smtp = self._connection()
                code, reply = self._transaction(smtp, recipient, raw)
                return code, reply, reused
            except _StaleConnection:
                self._drop(polite=False)
                if not reused:
                    raise ChannelError(ErrorKind.RETRYABLE,
                                       "SMTP server closed the connection at MAIL",
                                       detail={"stage": "MAIL"}) from None
                log.info("email delivery %s: reused connection was closed; reconnecting",
                         delivery_id)

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self._connect()
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        stage = "CONNECT"
        try:
            # local_hostname given so that smtplib does not call getfqdn(), which
            # can stall on a DNS lookup for seconds inside containers.
            if s.ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, local_hostname=s.message_id_domain, timeout=s.timeout,
                    context=self._ssl_context)
            else:
                smtp = smtplib.SMTP(s.host, s.port, local_hostname=s.message_id_domain,
                                    timeout=s.timeout)
        except (smtplib.SMTPException, OSError) as error:
            raise _connection_error(error, stage, s) from None
        try:
            stage = "EHLO"
            smtp.ehlo_or_helo_if_needed()
            if s.starttls:
                stage = "STARTTLS"
                smtp.starttls(context=self._ssl_context)
                stage = "EHLO"
                smtp.ehlo_or_helo_if_needed()
            if s.username:
                stage = "AUTH"
                smtp.login(s.username, s.password or "")
        except (smtplib.SMTPException, OSError) as error:
            smtp.close()
            raise _connection_error(error, stage, s) from None
        log.info("SMTP connection to %s:%s opened", s.host, s.port)
        return smtp

    def _transaction(self, smtp: smtplib.SMTP, recipient: str, raw: bytes) -> tuple[int, str]:
        options = [f"SIZE={len(raw)}"] if smtp.has_extn("size") else []
        stage = "MAIL"
        try:
            code, reply = smtp.mail(self.settings.from_address, options)
            if code != 250:
                self._fail(smtp, code, reply, stage)
            stage = "RCPT"
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                self._fail(smtp, code, reply, stage)
            stage = "DATA"
            code, reply = smtp.data(raw)
            if code != 250:
                self._fail(smtp, code, reply, stage)
            return code, _text(reply)
        except smtplib.SMTPServerDisconnected as error:
            self._smtp = None
            if stage == "MAIL":
                raise _StaleConnection from None
            # At DATA the message may have been accepted just before the line
            # dropped: the engine resends with the same Message-ID.
            raise ChannelError(
                ErrorKind.RETRYABLE, f"SMTP connection lost at {stage}: {error}",
                detail={"stage": stage, "in_doubt": stage == "DATA"}) from None
        except smtplib.SMTPResponseException as error:  # DATA refused before the content
            self._fail(smtp, error.smtp_code, error.smtp_error, stage)
        except OSError as error:
            self._drop(polite=False)
            raise ChannelError(ErrorKind.RETRYABLE, f"SMTP connection failed at {stage}: "
                               f"{error.__class__.__name__}: {error}",
                               detail={"stage": stage, "in_doubt": stage == "DATA"}) from None
        raise AssertionError("unreachable")  # pragma: no cover - _fail always raises

    def _fail(self, smtp: smtplib.SMTP, code: int, reply: bytes | str, stage: str) -> None:
        text = _text(reply)
        if code == 421:  # the server is closing this connection
            self._drop(polite=False)
        else:
            # Leave the connection clean for the next message.
            try:
                smtp.rset()
            except (smtplib.SMTPException, OSError):
                self._drop(polite=False)
        kind = classify_reply(code, text, stage)
        raise ChannelError(kind, f"SMTP {code} at {stage}: {text}",
                           detail={"smtp_code": code, "smtp_reply": text, "stage": stage})

    def _drop(self, *, polite: bool) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if polite:
                smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()


def _connection_error(error: smtplib.SMTPException | OSError, stage: str,
                      settings: SmtpSettings) -> ChannelError:
    where = f"{settings.host}:{settings.port}"
    if isinstance(error, smtplib.SMTPResponseException):  # includes 535 from AUTH
        text = _text(error.smtp_error)
        return ChannelError(classify_reply(error.smtp_code, text, stage),
                            f"SMTP {error.smtp_code} at {stage} from {where}: {text}",
                            detail={"smtp_code": error.smtp_code, "smtp_reply": text,
                                    "stage": stage})
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return ChannelError(ErrorKind.RETRYABLE, f"SMTP server {where} closed the connection "
                            f"at {stage}: {error}", detail={"stage": stage})
    if isinstance(error, ssl.SSLCertVerificationError):
        # Retrying cannot fix a certificate that does not match; someone must.
        return ChannelError(ErrorKind.PERMANENT, f"TLS certificate of {where} not trusted: "
                            f"{error.verify_message}", detail={"stage": stage})
    if isinstance(error, smtplib.SMTPException):
        # STARTTLS or AUTH not offered, no usable AUTH mechanism: configuration.
        return ChannelError(ErrorKind.PERMANENT, f"SMTP {stage} with {where} failed: {error}",
                            detail={"stage": stage})
    # Refused, unreachable, timed out, TLS handshake cut: the network, try again.
    return ChannelError(ErrorKind.RETRYABLE, f"SMTP server {where} unreachable at {stage}: "
                        f"{error.__class__.__name__}: {error}", detail={"stage": stage})


def _text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    text = " ".join(reply.split())
    return text if len(text) <= _MAX_REPLY else text[: _MAX_REPLY - 1] + "…"
