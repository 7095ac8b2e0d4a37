"""UBL 2.1 (Peppol BIS Billing 3.0) reading and writing."""

from einvoice.ubl.embed import embed_attachment, embed_pdf, pdf_attachment
from einvoice.ubl.reader import declares_peppol, read_ubl
from einvoice.ubl.writer import write_ubl

__all__ = [
    "declares_peppol",
    "embed_attachment",
    "embed_pdf",
    "pdf_attachment",
    "read_ubl",
    "write_ubl",
]
