"""The VAPID key pair that identifies this Herald instance to Web Push services.

Browsers subscribe with our public key (the ``applicationServerKey``) and push
services only accept messages signed by the matching private key, so the key
must survive restarts: losing it orphans every subscription. It comes from
configuration (a PEM) or is generated once and kept in the instance folder.
"""

from __future__ import annotations

import base64
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger(__name__)

VAPID_KEY_FILENAME = "vapid_private_key.pem"


class VapidKeyError(ValueError):
    """The configured or stored key is not a usable P-256 private key."""


@dataclass(frozen=True, slots=True)
class VapidKeys:
    """A P-256 key pair for signing VAPID tokens (RFC 8292)."""

    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_key_bytes(self) -> bytes:
        """The public key as an uncompressed point (65 bytes), as push services expect it."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    @property
    def public_key_b64url(self) -> str:
        """The ``applicationServerKey`` the browser passes to ``pushManager.subscribe``."""
        return base64.urlsafe_b64encode(self.public_key_bytes).rstrip(b"=").decode("ascii")

    @property
    def private_key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM, the form it is stored and configured in."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())

    @classmethod
    def generate(cls) -> VapidKeys:
        """A new random key pair."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes) -> VapidKeys:
        """Load a private key from PEM; it must be an EC key on P-256."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise VapidKeyError(f"not a readable unencrypted PEM private key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise VapidKeyError("VAPID needs an EC private key on P-256 (secp256r1)")
        return cls(key)


def load_or_create_vapid_keys(instance_path: Path,
                              private_key_pem: bytes | None = None) -> VapidKeys:
    """The instance's VAPID keys: from configuration if given, else from the instance folder.

    On first run a key is generated and written to ``<instance>/vapid_private_key.pem``
    with mode 0600. Several processes (web, dispatcher, consumer) may start at
    once; exactly one key wins and the others load it.
    """
    if private_key_pem is not None:
        return VapidKeys.from_pem(private_key_pem)
    path = Path(instance_path) / VAPID_KEY_FILENAME
    if path.exists():
        return _load_stored(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = VapidKeys.generate()
    try:
        _write_new(path, keys.private_key_pem)
    except FileExistsError:
        # Another process created it between our check and our write: theirs is the key.
        return _load_stored(path)
    log.info("generated a new VAPID key pair in %s", path)
    return keys


def _load_stored(path: Path) -> VapidKeys:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by others (mode %o); it should be 0600", path, mode)
    return VapidKeys.from_pem(path.read_bytes())


def _write_new(path: Path, pem: bytes) -> None:
    """Write ``pem`` to ``path`` atomically, never replacing an existing file.

    The key goes to a private temporary file first and is then hard-linked into
    place, so no reader ever sees a half-written key and a concurrent creator
    gets ``FileExistsError`` instead of silently overwriting the winner.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".vapid-", suffix=".tmp")
    try:
        # mkstemp already creates 0600; say so explicitly rather than rely on it.
        os.chmod(tmp_name, 0o600)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(pem)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.link(tmp_name, path)
    finally:
        os.unlink(tmp_name)
