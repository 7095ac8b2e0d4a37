"""Secrets kept in the database, sealed (encrypted and authenticated) at rest.

Some secrets must be stored in a form Herald can read back: a TOTP seed (the code is
computed from it) and an outbound webhook's signing key (HMAC needs the key itself).
Hashing is impossible for those, so they are sealed with AES-256-GCM under a key
derived (HKDF-SHA256) from the deployment's ``SECRET_KEY``. A copy of the database
alone, a backup or a replica, then reveals none of them.

A sealed value reads ``sealed:v1:<key id>:<base64url(nonce + ciphertext + tag)>``.
The key id names which secret key sealed it, so ``SECRET_KEY`` can be rotated: the
old one stays readable while listed in ``SECRET_KEY_FALLBACKS`` (the same setting
Flask uses for its session cookies) until ``herald db reseal`` has sealed every value
again under the new key. Each column seals with a purpose of its own, bound in as
associated data, so a sealed value copied into another column does not open.

Values stored before sealing existed are read as they are and sealed by
``herald db upgrade`` (see :func:`reseal_columns`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.orm import Session

PREFIX = "sealed:v1:"
_NONCE_BYTES = 12
_HKDF_INFO = b"herald sealed column v1"


class SealingError(Exception):
    """A sealed value cannot be opened, or no key is configured to seal with."""


@functools.lru_cache(maxsize=256)
def _derive(secret: str) -> tuple[str, bytes]:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=_HKDF_INFO).derive(secret.encode())
    return hashlib.sha256(key).hexdigest()[:8], key


class Keyring:
    """The keys values are sealed with (the first) and opened with (any of them)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets or not all(secrets):
            raise SealingError("sealing needs SECRET_KEY: set it (and keep it) for this "
                               "deployment")
        derived = [_derive(secret) for secret in secrets]
        self.primary_id = derived[0][0]
        self._keys = dict(reversed(derived))  # the primary wins a (theoretical) id clash

    def seal(self, plain: str, purpose: str) -> str:
        """``plain`` sealed under the primary key for ``purpose``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self._keys[self.primary_id]).encrypt(
            nonce, plain.encode(), purpose.encode())
        return f"{PREFIX}{self.primary_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: str, purpose: str) -> str:
        """The plain text of a sealed ``value``; a value never sealed comes back as it is."""
        if not is_sealed(value):
            return value
        key_id, _, body = value[len(PREFIX):].partition(":")
        key = self._keys.get(key_id)
        if key is None:
            raise SealingError(
                f"a stored {purpose} secret was sealed with a secret key this deployment "
                f"no longer has (key id {key_id}); put the old SECRET_KEY back into "
                "SECRET_KEY_FALLBACKS")
        try:
            raw = base64.urlsafe_b64decode(body)
            return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:],
                                       purpose.encode()).decode()
        except (InvalidTag, ValueError) as error:
            raise SealingError(f"a stored {purpose} secret is damaged or was moved from "
                               "another column; it cannot be opened") from error

    def is_current(self, value: str) -> bool:
        """Whether ``value`` is sealed under the primary key (nothing left to reseal)."""
        return value.startswith(f"{PREFIX}{self.primary_id}:")


def is_sealed(value: str) -> bool:
    """Whether ``value`` is in the sealed form (not whether it opens)."""
    return value.startswith(PREFIX)


# The process's keyring, installed by the app factory from its settings; every Herald
# process (web, worker, dispatcher, CLI) is built by that factory. The keys are kept
# across apps made in one process (tests make many), so what one sealed the next opens,
# and ``current`` (when set) picks the sealing key of the app at work, not the last built.
_keyring: Keyring | None = None
_known_secrets: list[str] = []
_current: Callable[[], Keyring | None] | None = None


def install(secret_key: str, fallbacks: Iterable[str] = (),
            current: Callable[[], Keyring | None] | None = None) -> Keyring:
    """Make ``secret_key`` this process's sealing key; ``fallbacks`` (and earlier keys) open.

    ``current``, when given, names the keyring to seal with at a given moment (the
    portal passes "the current Flask app's"); it must open what the process's opens.
    """
    global _keyring, _current
    ordered = [secret_key, *fallbacks, *_known_secrets]
    _known_secrets[:] = [secret for secret in dict.fromkeys(ordered) if secret]
    _keyring = Keyring(list(_known_secrets))
    if current is not None:
        _current = current
    return _keyring


def keyring() -> Keyring:
    """The keyring to seal with now; a clear error when the process has none."""
    chosen = _current() if _current is not None else None
    return chosen if chosen is not None else opening_keyring()


def opening_keyring() -> Keyring:
    """The keyring to open with: every key this process was given."""
    if _keyring is None:
        raise SealingError("no sealing key installed: build the process through "
                           "portal.create_app (which reads SECRET_KEY)")
    return _keyring


class SealedString(sa.types.TypeDecorator):
    """A string column whose values are stored sealed for ``purpose``."""

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int, purpose: str) -> None:
        super().__init__(length)
        self.purpose = purpose

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None or is_sealed(value):
            return value
        return keyring().seal(value, self.purpose)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        return opening_keyring().open(value, self.purpose)


class SealedText(SealedString):
    """A text column (no length) whose values are stored sealed for ``purpose``."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        sa.types.TypeDecorator.__init__(self)
        self.purpose = purpose


def reseal_columns(session: Session,
                   columns: Sequence[sa.orm.InstrumentedAttribute]) -> dict[str, int]:
    """Seal again, under the primary key, every value of ``columns`` that is not.

    Covers values stored before sealing existed and values sealed under a key now in
    ``SECRET_KEY_FALLBACKS``. Returns how many values of each column were sealed.
    Runs in the caller's transaction.
    """
    ring, opener = keyring(), opening_keyring()
    counts: dict[str, int] = {}
    for column in columns:
        table = column.class_.__table__
        purpose = column.property.columns[0].type.purpose
        raw = sa.column(column.key, sa.String)  # the stored text, not opened
        primary_key = table.primary_key.columns.values()[0]
        rows = session.execute(sa.select(primary_key, raw).select_from(table)
                               .where(raw.is_not(None))).all()
        changed = 0
        for row_id, stored in rows:
            if ring.is_current(stored):
                continue
            resealed = ring.seal(opener.open(stored, purpose), purpose)
            # Already sealed, so the column type stores it as it is.
            session.execute(sa.update(table).where(primary_key == row_id)
                            .values({column.key: resealed}))
            changed += 1
        counts[f"{table.name}.{column.key}"] = changed
    return counts
