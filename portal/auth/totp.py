"""The optional second factor: TOTP codes (pyotp) and single-use recovery codes."""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
import time

import pyotp
import segno
import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.models import RecoveryCode, Role, User
from portal.models.base import utcnow

ISSUER = "Herald"
RECOVERY_CODE_COUNT = 10
# Codes of one step before and after are accepted, for clocks a little off.
VALID_WINDOW = 1


def totp_required(user: User) -> bool:
    """True when the user must have TOTP on before using the portal (administrators)."""
    return user.role is Role.ADMIN


def new_secret() -> str:
    """A fresh base32 TOTP secret."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app scans."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The URI as a QR code: an SVG rendered here, as a data: URI for an ``<img>``."""
    buffer = io.BytesIO()
    # Dark modules on an opaque white ground with a quiet zone: scanners need the contrast,
    # also when the page is in dark mode.
    segno.make(uri, error="m").save(buffer, kind="svg", scale=5, border=4, xmldecl=False,
                                    dark="#000", light="#fff",
                                    title=ISSUER)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _clean(code: str) -> str:
    return "".join(ch for ch in (code or "") if ch.isalnum()).lower()


def matching_counter(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step ``code`` is valid for (within the window), or None."""
    code = _clean(code)
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if now is None else now
    counter = int(now // totp.interval)
    for step in range(counter - VALID_WINDOW, counter + VALID_WINDOW + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_code(user: User, code: str) -> bool:
    """True for a current TOTP code not used before (a replayed code is refused)."""
    if user.totp_secret is None:
        return False
    step = matching_counter(user.totp_secret, code)
    if step is None or (user.totp_last_counter is not None and step <= user.totp_last_counter):
        return False
    user.totp_last_counter = step
    return True


def _code_digest(code: str) -> str:
    return hashlib.sha256(_clean(code).encode("utf-8")).hexdigest()


def new_recovery_codes(session: Session, user: User) -> list[str]:
    """Replace the user's recovery codes with ten new ones; returns them (shown once)."""
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(5)  # 40 bits, written as xxxxx-xxxxx
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(user_id=user.id, code_sha256=_code_digest(raw)))
    session.flush()
    return codes


def use_recovery_code(session: Session, user: User, code: str) -> bool:
    """True when ``code`` is one of the user's unused recovery codes (now used up)."""
    if len(_clean(code)) != 10:
        return False
    row = session.scalars(sa.select(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.code_sha256 == _code_digest(code),
        RecoveryCode.used_at.is_(None))).first()
    if row is None:
        return False
    row.used_at = utcnow()
    session.flush()
    return True


def remaining_recovery_codes(session: Session, user: User) -> int:
    """How many recovery codes the user has left."""
    return session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0


def enable(session: Session, user: User, secret: str, step: int) -> list[str]:
    """Turn TOTP on with a confirmed secret; returns the new recovery codes."""
    user.totp_secret = secret
    user.totp_enabled_at = utcnow()
    user.totp_last_counter = step
    return new_recovery_codes(session, user)


def disable(session: Session, user: User) -> None:
    """Turn TOTP off and drop the recovery codes."""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_counter = None
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.flush()
