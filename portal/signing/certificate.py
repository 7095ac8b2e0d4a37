"""The signed PDF: the original document, a certificate page, and a PAdES signature.

The certificate page is rendered with WeasyPrint from
``templates/signing/certificate.html`` and appended with pypdf, so the signed
file holds the original pages unchanged. With ``SIGNING_KEY_FILE`` configured,
pyHanko then applies a PAdES signature over the whole file, which makes any
later change to it visible in every PDF reader.
"""

from __future__ import annotations

import base64
import functools
import io
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from flask import render_template
from flask_babel import force_locale
from pypdf import PdfReader, PdfWriter


@dataclass(frozen=True, slots=True)
class SignerEvidence:
    """One signer's line on the certificate."""

    position: int
    email: str
    name: str | None
    typed_name: str | None
    drawn_png: bytes | None
    signed_at: datetime
    ip_address: str
    user_agent: str
    event_hash: str

    @property
    def drawn_data_url(self) -> str | None:
        """The drawn signature as a data URL for the certificate's HTML."""
        if not self.drawn_png:
            return None
        return "data:image/png;base64," + base64.b64encode(self.drawn_png).decode()


@dataclass(frozen=True, slots=True)
class Certificate:
    """What the certificate page states."""

    request_id: int
    title: str
    mode: str
    seller_name: str
    document_sha256: str
    consent_text: str
    requested_at: datetime
    completed_at: datetime
    signers: list[SignerEvidence]
    language: str = "en"


@functools.cache
def _stylesheet():
    import weasyprint

    css = (resources.files("portal") / "templates" / "signing" / "certificate.css").read_text(
        "utf-8")
    return weasyprint.CSS(string=css)


def render_certificate(certificate: Certificate) -> bytes:
    """The certificate page(s) as a PDF of their own (needs an app context)."""
    import weasyprint

    with force_locale(certificate.language):
        html = render_template("signing/certificate.html", certificate=certificate)
    # Only data: URLs: nothing in a signer's input can make the renderer fetch a file or URL.
    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"})
    return weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf(
        stylesheets=[_stylesheet()])


def append_pages(original: bytes, extra: bytes) -> bytes:
    """``original`` with the pages of ``extra`` added at the end (attachments kept)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(original)))
    writer.append(PdfReader(io.BytesIO(extra)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pades_sign(pdf: bytes, key_file: Path, password: str | None, *, reason: str) -> bytes:
    """Apply a PAdES signature with the PKCS#12 key in ``key_file``."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    signer = signers.SimpleSigner.load_pkcs12(
        str(key_file), passphrase=password.encode() if password else None)
    if signer is None:
        raise ValueError(f"SIGNING_KEY_FILE={str(key_file)!r} could not be opened with "
                         "SIGNING_KEY_PASSWORD; check both")
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    metadata = signers.PdfSignatureMetadata(
        field_name="HeraldSignature", reason=reason, md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES)
    return signers.sign_pdf(writer, metadata, signer=signer).getvalue()


def signed_pdf(original: bytes, certificate: Certificate, *, key_file: Path | None,
               key_password: str | None) -> tuple[bytes, bool]:
    """The signed document, and whether it carries a PAdES signature."""
    pdf = append_pages(original, render_certificate(certificate))
    if key_file is None:
        return pdf, False
    return pades_sign(pdf, key_file, key_password,
                      reason=f"Signature request {certificate.request_id} completed"), True
