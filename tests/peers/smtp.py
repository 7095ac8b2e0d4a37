"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, with switches for failures.

The peer records every accepted message (envelope and raw DATA) and counts the
connections that greeted it. It can refuse one recipient
(:meth:`SmtpPeer.refuse_rcpt`), fail the next or every ``MAIL``/``RCPT``/``DATA``
(:meth:`SmtpPeer.fail_next`, :meth:`SmtpPeer.fail_always`), demand a login
(:meth:`SmtpPeer.require_auth`), offer and demand STARTTLS
(:meth:`SmtpPeer.enable_starttls`), speak implicit TLS, drop every open
connection (:meth:`SmtpPeer.disconnect_all`) the way a relay ends idle ones, answer
``DATA`` slowly (:meth:`SmtpPeer.slow_down`), and stop and come back on the same
port (:meth:`SmtpPeer.stop`, :meth:`SmtpPeer.restart`).

Use the ``smtp_peer`` fixture, or ``SmtpPeer`` as a context manager.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.peers.ports import free_port

STAGES = ("MAIL", "RCPT", "DATA")


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the peer accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    peer: tuple[Any, ...]
    login: str | None
    tls: bool

    def parsed(self) -> EmailMessage:
        """The DATA parsed with the modern ``email`` API."""
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass(frozen=True)
class TlsCertificate:
    """A self-signed certificate for 127.0.0.1 and localhost, in PEM files."""

    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        """What the peer serves TLS with."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate and checks the host name."""
        return ssl.create_default_context(cafile=str(self.cert_path))


def make_tls_certificate(directory: Path) -> TlsCertificate:
    """Generate a self-signed P-256 certificate valid for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "herald test smtp peer")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "peer-cert.pem", directory / "peer-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return TlsCertificate(cert_path, key_path)


class _Handler:
    """aiosmtpd hooks; runs on the peer's event-loop thread."""

    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        self.peer._greeted(server, session)
        return responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if (reply := self.peer._failure("MAIL", server)) is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        refused = self.peer._refused.get(address.lower())
        if refused is not None:
            return refused
        if (reply := self.peer._failure("RCPT", server)) is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if (reply := self.peer._failure("DATA", server)) is not None:
            return reply
        login = getattr(session.auth_data, "login", None)
        self.peer._record(ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(envelope.original_content or b""),
            peer=tuple(session.peer),
            login=login.decode() if isinstance(login, bytes) else login,
            tls=session.ssl is not None,
        ))
        queued = len(self.peer.messages)
        if self.peer._data_delay:
            # Recorded first, as a relay queues a message before it answers: a client
            # that dies during the wait leaves a message delivered but never confirmed.
            await asyncio.sleep(self.peer._data_delay)
        return f"250 2.0.0 Ok: queued as peer-{queued}"


class _Controller(Controller):
    """Builds each connection's SMTP protocol from the peer's switches of the moment."""

    def __init__(self, peer: SmtpPeer, **kwargs: Any) -> None:
        super().__init__(_Handler(peer), **kwargs)
        self.peer = peer

    def factory(self) -> SMTP:
        peer = self.peer
        tls = peer._starttls_context
        return SMTP(
            self.handler,
            hostname="peer.test",
            tls_context=tls,
            require_starttls=tls is not None and peer._starttls_required,
            auth_required=peer._credentials is not None,
            auth_require_tls=tls is not None or peer._implicit_tls,
            authenticator=peer._authenticate,
        )


class SmtpPeer:
    """An aiosmtpd server on 127.0.0.1 and a free port, recording what it accepts."""

    host = "127.0.0.1"

    def __init__(self, *, implicit_tls: ssl.SSLContext | None = None) -> None:
        self.port = 0
        self.messages: list[ReceivedMessage] = []
        self.logins: list[str] = []
        self._implicit_tls = implicit_tls is not None
        self._implicit_tls_context = implicit_tls
        self._lock = threading.Lock()
        self._peers: set[tuple[Any, ...]] = set()
        self._servers: set[SMTP] = set()
        self._refused: dict[str, str] = {}
        self._next: dict[str, deque[str]] = {stage: deque() for stage in STAGES}
        self._always: dict[str, str] = {}
        self._credentials: tuple[str, str] | None = None
        self._starttls_context: ssl.SSLContext | None = None
        self._starttls_required = False
        self._data_delay = 0.0
        self._controller: _Controller | None = None

    # -- switches -------------------------------------------------------------
    def refuse_rcpt(self, address: str, reply: str) -> None:
        """Answer ``RCPT TO:<address>`` with ``reply``, e.g. ``"550 5.1.1 no such user"``."""
        self._refused[address.lower()] = reply

    def fail_next(self, code: int, text: str, *, at: str = "DATA", times: int = 1) -> None:
        """Answer the next ``times`` commands of stage ``at`` with ``code text``."""
        self._check_stage(at)
        self._next[at].extend([f"{code} {text}"] * times)

    def fail_always(self, code: int, text: str, *, at: str) -> None:
        """Answer every command of stage ``at`` with ``code text`` until :meth:`heal`."""
        self._check_stage(at)
        self._always[at] = f"{code} {text}"

    def heal(self) -> None:
        """Forget every failure switch."""
        self._refused.clear()
        self._always.clear()
        for queue in self._next.values():
            queue.clear()

    def require_auth(self, username: str, password: str) -> None:
        """Demand AUTH (PLAIN or LOGIN) with these credentials on new connections."""
        self._credentials = (username, password)

    def enable_starttls(self, context: ssl.SSLContext, *, required: bool = True) -> None:
        """Offer STARTTLS on new connections; when ``required``, refuse mail without it."""
        self._starttls_context = context
        self._starttls_required = required

    def slow_down(self, seconds: float) -> None:
        """Wait ``seconds`` after accepting each message before answering its ``DATA``."""
        self._data_delay = seconds

    def disconnect_all(self) -> None:
        """Close every open client connection from the server side, and wait for it."""
        assert self._controller is not None

        async def close_all() -> None:
            for server in list(self._servers):
                if server.transport is not None:
                    server.transport.close()
            for _ in range(100):
                if all(server.transport is None for server in self._servers):
                    break
                await asyncio.sleep(0.01)
            self._servers.clear()

        asyncio.run_coroutine_threadsafe(close_all(), self._controller.loop).result(timeout=5)

    # -- observations -----------------------------------------------------------
    @property
    def connections(self) -> int:
        """How many client connections said EHLO (one per connection, STARTTLS or not)."""
        with self._lock:
            return len(self._peers)

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> SmtpPeer:
        """Start the server on a free port."""
        last_error: OSError | None = None
        for _ in range(5):  # another process may take the free port before we bind it
            self.port = free_port()
            controller = _Controller(self, hostname=self.host, port=self.port,
                                     ssl_context=self._implicit_tls_context, ready_timeout=5)
            try:
                controller.start()
            except OSError as error:
                last_error = error
                continue
            self._controller = controller
            return self
        raise RuntimeError(f"could not start the SMTP peer: {last_error}")

    def stop(self) -> None:
        """Stop the server and close its connections."""
        if self._controller is not None:
            self.disconnect_all()  # clients see the connection close rather than hang
            self._controller.stop()
            self._controller = None

    def restart(self) -> SmtpPeer:
        """Listen again on the same port after :meth:`stop`, keeping what was received."""
        assert self._controller is None and self.port, "stop() a started peer first"
        controller = _Controller(self, hostname=self.host, port=self.port,
                                 ssl_context=self._implicit_tls_context, ready_timeout=5)
        controller.start()
        self._controller = controller
        return self

    def __enter__(self) -> SmtpPeer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- called by the handler on the loop thread -----------------------------
    def _greeted(self, server: SMTP, session: Session) -> None:
        with self._lock:
            self._peers.add(tuple(session.peer))
            self._servers.add(server)

    def _failure(self, stage: str, server: SMTP) -> str | None:
        with self._lock:
            reply = self._next[stage].popleft() if self._next[stage] else None
        reply = reply or self._always.get(stage)
        if reply is not None and reply.startswith("421") and server.transport is not None:
            # A real server closes the connection right after a 421; the reply is
            # already written when this runs.
            server.loop.call_soon(server.transport.close)
        return reply

    def _record(self, message: ReceivedMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword) or self._credentials is None:
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        if (login, password) != self._credentials:
            return AuthResult(success=False, handled=False)
        with self._lock:
            self.logins.append(login)
        return AuthResult(success=True, auth_data=auth_data)

    @staticmethod
    def _check_stage(stage: str) -> None:
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")


@pytest.fixture(scope="session")
def smtp_tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> TlsCertificate:
    """A self-signed certificate for the peer's STARTTLS and implicit TLS."""
    return make_tls_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def smtp_peer() -> Iterator[SmtpPeer]:
    """A running :class:`SmtpPeer` (plain SMTP; switch on auth and STARTTLS per test)."""
    with SmtpPeer() as peer:
        yield peer
