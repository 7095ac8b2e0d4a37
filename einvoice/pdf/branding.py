"""How a seller's documents look: display name, logo, colours and footer."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["LOGO_MIME_TYPES", "Branding"]

#: Logo formats WeasyPrint draws without extra system libraries.
LOGO_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/svg+xml"})

# Colours go into a stylesheet; accepting only hex notation keeps anything
# else (a stray ``;`` or ``}``) from reaching the CSS.
_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Branding:
    """The seller's look on a rendered PDF.

    ``seller_name`` is the name shown in the letterhead (the legal name from
    the document is printed beside the address). ``logo`` is image bytes of
    ``logo_mime_type`` (PNG, JPEG, GIF or SVG). Colours are ``#rgb`` or
    ``#rrggbb``: ``primary_colour`` for headings and rules, ``accent_colour``
    for the amount due and links. ``footer_text`` is printed on every page.
    """

    seller_name: str
    logo: bytes | None = None
    logo_mime_type: str | None = None
    primary_colour: str = "#1f3a5f"
    accent_colour: str = "#0b7a75"
    footer_text: str | None = None

    def __post_init__(self) -> None:
        for name in ("primary_colour", "accent_colour"):
            if not _HEX_COLOUR.match(getattr(self, name)):
                raise ValueError(f"{name} must be a hex colour like #1f3a5f")
        if self.logo is not None and self.logo_mime_type not in LOGO_MIME_TYPES:
            raise ValueError(
                f"logo_mime_type must be one of {sorted(LOGO_MIME_TYPES)} when a logo is given"
            )
