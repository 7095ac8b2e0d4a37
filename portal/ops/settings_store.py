"""What the settings page changes: the seller's record, its branding, the sending defaults
and the message types, each change logged with who made it and the values before and after.

Services take a session and never commit (the request commits). Logos are checked
here (PNG, JPEG or SVG by their content, not by what the browser claims, and at most
:data:`MAX_LOGO_BYTES`); an SVG with scripts, event handlers, embedded HTML or
references to other files is refused, because the logo is drawn into every PDF.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from lxml import etree
from sqlalchemy.orm import Session

from distribution.channels.base import ChannelName
from distribution.events import record_event
from distribution.preferences import MessageType, ensure_message_types
from portal.models import Organisation
from portal.models.delivery_defaults import SINGLETON_ID, DeliveryDefaults
from portal.sending_defaults import delivery_defaults

MAX_LOGO_BYTES = 512 * 1024
LOGO_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
SETTINGS_SUBJECT = "settings"
# Channels an organisation default may name (portal inbox included: it always works).
DEFAULT_CHANNELS = tuple(ChannelName)

# The organisation's fields the seller details form edits, in order.
SELLER_FIELDS = ("legal_name", "trading_name", "vat_id", "legal_registration_id",
                 "address_line1", "address_line2", "postal_code", "city",
                 "country_subdivision", "country_code", "email", "phone", "website",
                 "iban", "bic", "peppol_endpoint_scheme", "peppol_endpoint_id",
                 "default_currency")
BRANDING_FIELDS = ("primary_colour", "accent_colour")
DEFAULTS_FIELDS = ("window_start_hour", "window_end_hour", "weekends", "holidays",
                   "window_time_zone", "max_attempts", "first_backoff_seconds",
                   "max_backoff_seconds")


class LogoError(ValueError):
    """The uploaded logo cannot be used; the message says why (for people)."""


def _changes(record: Any, values: dict[str, Any], fields: tuple[str, ...]) -> dict[str, list]:
    """Set ``values`` on ``record``; return {field: [old, new]} for what actually changed."""
    changed = {}
    for name in fields:
        if name not in values:
            continue
        old, new = getattr(record, name), values[name]
        if old != new:
            changed[name] = [old, new]
            setattr(record, name, new)
    return changed


def update_seller(session: Session, org: Organisation, values: dict[str, Any], *,
                  actor: str) -> dict[str, list]:
    """Change the seller's details; logs and returns what changed."""
    changed = _changes(org, values, SELLER_FIELDS)
    if changed:
        session.flush()
        record_event(session, SETTINGS_SUBJECT, f"organisation:{org.id}",
                     "settings.seller_changed", {"changes": changed}, actor=actor)
    return changed


def update_branding(session: Session, org: Organisation, values: dict[str, Any], *,
                    logo: tuple[bytes, str] | None = None, remove_logo: bool = False,
                    actor: str) -> dict[str, list]:
    """Change the colours and the logo; the log names the logo by size and SHA-256."""
    changed = _changes(org, values, BRANDING_FIELDS)
    if logo is not None or (remove_logo and org.logo is not None):
        data, mime = logo if logo is not None else (None, None)
        changed["logo"] = [_logo_summary(org.logo, org.logo_mime_type),
                           _logo_summary(data, mime)]
        org.logo, org.logo_mime_type = data, mime
    if changed:
        session.flush()
        record_event(session, SETTINGS_SUBJECT, f"organisation:{org.id}",
                     "settings.branding_changed", {"changes": changed}, actor=actor)
    return changed


def _logo_summary(data: bytes | None, mime: str | None) -> dict[str, Any] | None:
    if data is None:
        return None
    return {"type": mime, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def update_delivery_defaults(session: Session, values: dict[str, Any], *,
                             actor: str) -> dict[str, list]:
    """Change the send window, holidays and retry policy; logs and returns what changed."""
    row = session.get(DeliveryDefaults, SINGLETON_ID)
    if row is None:
        row = delivery_defaults(session)
        session.add(row)
    changed = _changes(row, values, DEFAULTS_FIELDS)
    if changed:
        row.updated_by = actor
        session.flush()
        record_event(session, SETTINGS_SUBJECT, "delivery_defaults",
                     "settings.delivery_defaults_changed", {"changes": changed}, actor=actor)
    return changed


def message_types(session: Session) -> list[MessageType]:
    """Every message type with its default channels, built-in ones created if missing."""
    ensure_message_types(session)
    return list(session.scalars(sa.select(MessageType).order_by(MessageType.code)))


def update_message_type(session: Session, code: str, *, mandatory: bool,
                        default_channels: list[str], actor: str) -> dict[str, list]:
    """Change one type's default channels and whether customers may opt out of it."""
    kind = session.get(MessageType, code)
    if kind is None:
        raise KeyError(code)
    changed = _changes(kind, {"mandatory": mandatory,
                              "default_channels": [ChannelName(c).value
                                                   for c in default_channels]},
                       ("mandatory", "default_channels"))
    if changed:
        session.flush()
        record_event(session, SETTINGS_SUBJECT, f"message_type:{code}",
                     "settings.message_type_changed", {"changes": changed}, actor=actor)
    return changed


def check_logo(data: bytes) -> str:
    """The logo's media type from its content, or :class:`LogoError` saying what is wrong."""
    if not data:
        raise LogoError(_("Logo: the file is empty."))
    if len(data) > MAX_LOGO_BYTES:
        raise LogoError(_("Logo: the file is %(size)d KB; the limit is %(limit)d KB.",
                          size=len(data) // 1024, limit=MAX_LOGO_BYTES // 1024))
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if b"<svg" in data[:4096]:
        _check_svg(data)
        return "image/svg+xml"
    raise LogoError(_("Logo: use a PNG, JPEG or SVG image."))


# Elements that run code or pull in other content; an SVG logo needs none of them.
_SVG_FORBIDDEN = {"script", "foreignObject", "iframe", "object", "embed", "use", "image",
                  "feImage", "handler", "listener"}


def _check_svg(data: bytes) -> None:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise LogoError(_("Logo: the SVG file is not well-formed XML.")) from exc
    if etree.QName(root).localname != "svg":
        raise LogoError(_("Logo: use a PNG, JPEG or SVG image."))
    if root.getroottree().docinfo.internalDTD is not None:
        raise LogoError(_("Logo: the SVG declares a DOCTYPE; save it without one."))
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        if etree.QName(element).localname in _SVG_FORBIDDEN or (
                etree.QName(element).localname == "style" and _external_url(element.text or "")):
            raise LogoError(_("Logo: the SVG contains scripts, embedded content or links "
                              "to other files; export it as a plain drawing."))
        for name, value in element.attrib.items():
            local = etree.QName(name).localname.lower()
            if local.startswith("on") or (local == "href" and not value.startswith("#")) \
                    or _external_url(value):
                raise LogoError(_("Logo: the SVG contains scripts, embedded content or links "
                                  "to other files; export it as a plain drawing."))


def _external_url(text: str) -> bool:
    """True when CSS text points outside the file (``url(#id)`` stays inside)."""
    compact = text.replace(" ", "").lower()
    return "@import" in compact or compact.replace("url(#", "").count("url(") > 0


def prefill_run_form(form: Any, session: Session) -> None:
    """Start a new run's form from the stored send window and holidays."""
    defaults = delivery_defaults(session)
    form.window_start_hour.data = defaults.window_start_hour
    form.window_end_hour.data = defaults.window_end_hour
    form.weekends.data = defaults.weekends
    form.window_time_zone.data = defaults.window_time_zone or ""
    form.holidays.data = "\n".join(defaults.holidays or [])
