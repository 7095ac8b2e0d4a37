"""The signed PDF carries a PAdES signature when a signing key is configured (pyHanko)."""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader

from distribution.documents import DatabaseStore
from distribution.events import events_for
from portal.config import ConfigError, Settings
from portal.models import RequestStatus
from portal.signing.actions import Visit, sign
from tests.portal.test_signing import CONSENT, context, make_request, world  # noqa: F401

PASSWORD = "throwaway-password"


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory):
    """A throwaway self-signed certificate and key, as a PKCS#12 file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Herald test signing"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Testing Telecom NV")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256()))
    path = tmp_path_factory.mktemp("signing") / "herald-signing.p12"
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        b"herald", key, certificate, None,
        serialization.BestAvailableEncryption(PASSWORD.encode())))
    return path, certificate


def test_signed_pdf_carries_a_pades_signature_that_validates(app, session, world,  # noqa: F811
                                                             signing_key):
    path, certificate = signing_key
    keyed = dataclasses.replace(context(app), key_file=path, key_password=PASSWORD)
    request = make_request(app, session, signers=["alice@example.com"])
    with app.test_request_context("/"):
        sign(session, request.signers[0], Visit("192.0.2.7", "Test browser"),
             typed_name="Alice Peeters", drawn_png=None, context=keyed)
    assert request.status is RequestStatus.COMPLETED
    pdf = DatabaseStore().get(session, request.signed_sha256)
    completed = events_for(session, "signature_request", str(request.id))[-1]
    assert completed.payload["pades"] is True
    assert completed.payload["signed_sha256"] == request.signed_sha256

    reader = PdfFileReader(io.BytesIO(pdf))
    (signature,) = reader.embedded_signatures
    trust = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[trust]))
    assert status.intact and status.valid and status.trusted
    assert status.coverage.name == "ENTIRE_FILE"
    # The certificate page is inside what was signed.
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Signature certificate" in text and "192.0.2.7" in re.sub(r"\s+", " ", text)


def test_without_a_key_there_is_no_pades_signature(app, session, world):  # noqa: F811
    request = make_request(app, session, signers=["alice@example.com"])
    with app.test_request_context("/"):
        sign(session, request.signers[0], Visit("192.0.2.7", "Test browser"),
             typed_name="Alice", drawn_png=None, context=context(app))
    pdf = DatabaseStore().get(session, request.signed_sha256)
    assert PdfFileReader(io.BytesIO(pdf)).embedded_signatures == []
    assert events_for(session, "signature_request", str(request.id))[-1].payload["pades"] is False


def test_signing_settings_come_from_the_environment(tmp_path, signing_key):
    path, _ = signing_key
    settings = Settings.from_env(tmp_path, {
        "SIGNING_KEY_FILE": str(path), "SIGNING_KEY_PASSWORD": PASSWORD,
        "SIGNING_REMIND_HOURS": "24", "SIGNING_EXPIRE_DAYS": "10"})
    assert settings.signing_key_file == path
    assert (settings.signing_remind_hours, settings.signing_expire_days) == (24, 10)
    assert PASSWORD not in repr(settings)
    defaults = Settings.from_env(tmp_path, {})
    assert (defaults.signing_key_file, defaults.signing_remind_hours,
            defaults.signing_expire_days) == (None, 48, 30)
    with pytest.raises(ConfigError, match="SIGNING_KEY_FILE"):
        Settings.from_env(tmp_path, {"SIGNING_KEY_FILE": str(tmp_path / "missing.p12")})
    with pytest.raises(ConfigError, match="SIGNING_REMIND_HOURS"):
        Settings.from_env(tmp_path, {"SIGNING_REMIND_HOURS": "soon"})
