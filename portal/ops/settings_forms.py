"""Forms of the ops settings page (Flask-WTF: CSRF on each). Error messages name the field."""

from __future__ import annotations

import re
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Email, InputRequired, Length, NumberRange, Optional, ValidationError

from portal.masking import iban_valid
from portal.preferences.peppol_ids import PeppolIdError, parse_peppol_id

_COUNTRY = re.compile(r"[A-Z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
# EN 16931 (BT-31): a VAT ID starts with the country's two-letter prefix.
_VAT_ID = re.compile(r"[A-Z]{2}[0-9A-Z+*.]{2,13}")
_BIC = re.compile(r"[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def _text(label, max_length: int, *, required: bool = False, description=None) -> StringField:
    validators = [InputRequired(_l("%(field)s: this is required.", field=label))] \
        if required else [Optional()]
    return StringField(label, validators=[*validators, Length(max=max_length, message=_l(
        "%(field)s: at most %(max)d characters.", field=label, max=max_length))],
        description=description, filters=[lambda v: v.strip() if isinstance(v, str) else v])


class SellerForm(FlaskForm):
    """The seller's legal identity, address, bank account and Peppol ID."""

    legal_name = _text(_l("Legal name"), 200, required=True)
    trading_name = _text(_l("Trading name"), 200)
    vat_id = _text(_l("VAT ID"), 32, description=_l("With the country prefix, e.g. BE0123456749."))
    legal_registration_id = _text(_l("Company registration number"), 64)
    address_line1 = _text(_l("Street and number"), 200, required=True)
    address_line2 = _text(_l("Address line 2"), 200)
    postal_code = _text(_l("Postal code"), 20, required=True)
    city = _text(_l("City"), 100, required=True)
    country_subdivision = _text(_l("Region"), 100)
    country_code = _text(_l("Country code"), 2, required=True,
                         description=_l("Two letters, e.g. BE."))
    email = EmailField(_l("Billing email"), validators=[Optional(), Email(
        message=_l("Billing email: enter an address such as billing@example.com."))])
    phone = _text(_l("Phone"), 40)
    website = _text(_l("Website"), 200)
    iban = _text(_l("IBAN"), 42)
    bic = _text(_l("BIC"), 11)
    peppol_endpoint = _text(_l("Peppol ID"), 70,
                            description=_l("scheme:identifier, e.g. 0208:0123456749."))
    default_currency = _text(_l("Currency"), 3, required=True,
                             description=_l("Three letters, e.g. EUR."))

    def validate_country_code(self, field: StringField) -> None:
        field.data = (field.data or "").upper()
        if not _COUNTRY.fullmatch(field.data):
            raise ValidationError(_l("Country code: two letters (ISO 3166), e.g. BE."))

    def validate_default_currency(self, field: StringField) -> None:
        field.data = (field.data or "").upper()
        if not _CURRENCY.fullmatch(field.data):
            raise ValidationError(_l("Currency: three letters (ISO 4217), e.g. EUR."))

    def validate_vat_id(self, field: StringField) -> None:
        if field.data:
            field.data = re.sub(r"[\s.\-]", "", field.data).upper()
            if not _VAT_ID.fullmatch(field.data):
                raise ValidationError(_l("VAT ID: start with the two-letter country prefix, "
                                         "then the number, e.g. BE0123456749."))

    def validate_iban(self, field: StringField) -> None:
        if field.data:
            field.data = field.data.replace(" ", "").upper()
            if not iban_valid(field.data):
                raise ValidationError(_l("IBAN: the check digits do not match (ISO 13616 "
                                         "mod-97); look for a mistyped character."))

    def validate_bic(self, field: StringField) -> None:
        if field.data:
            field.data = field.data.replace(" ", "").upper()
            if not _BIC.fullmatch(field.data):
                raise ValidationError(_l("BIC: 8 or 11 letters and digits, e.g. GEBABEBB."))

    def validate_peppol_endpoint(self, field: StringField) -> None:
        if field.data:
            try:
                field.data = str(parse_peppol_id(field.data))
            except PeppolIdError as exc:
                raise ValidationError(_l("Peppol ID: %(reason)s", reason=str(exc))) from exc

    def values(self) -> dict[str, object]:
        """The cleaned values as the organisation's columns (empty optional text is None)."""
        values: dict[str, object] = {
            name: (getattr(self, name).data or None) for name in (
                "legal_name", "trading_name", "vat_id", "legal_registration_id",
                "address_line1", "address_line2", "postal_code", "city",
                "country_subdivision", "country_code", "email", "phone", "website", "iban",
                "bic", "default_currency")}
        scheme, _, identifier = (self.peppol_endpoint.data or "").partition(":")
        values["peppol_endpoint_scheme"] = scheme or None
        values["peppol_endpoint_id"] = identifier or None
        return values


class BrandingForm(FlaskForm):
    """The logo on PDFs and the colours."""

    logo = FileField(_l("Logo"), description=_l("PNG, JPEG or SVG, at most 512 KB."))
    remove_logo = BooleanField(_l("Remove the logo"))
    primary_colour = StringField(_l("Brand colour"), validators=[InputRequired(
        _l("Brand colour: this is required."))])
    accent_colour = StringField(_l("Accent colour"), validators=[InputRequired(
        _l("Accent colour: this is required."))])

    def validate_primary_colour(self, field: StringField) -> None:
        if not _COLOUR.fullmatch(field.data or ""):
            raise ValidationError(_l("Brand colour: a hex colour such as #1d4ed8."))

    def validate_accent_colour(self, field: StringField) -> None:
        if not _COLOUR.fullmatch(field.data or ""):
            raise ValidationError(_l("Accent colour: a hex colour such as #0f172a."))


class SendingForm(FlaskForm):
    """The send window and holidays new runs start from, and the retry policy."""

    window_start_hour = IntegerField(_l("Send from (hour)"), validators=[
        InputRequired(_l("Send from: this is required.")),
        NumberRange(min=0, max=23, message=_l("Send from: an hour from 0 to 23."))])
    window_end_hour = IntegerField(_l("Send until (hour)"), validators=[
        InputRequired(_l("Send until: this is required.")),
        NumberRange(min=1, max=24, message=_l("Send until: an hour from 1 to 24."))])
    weekends = BooleanField(_l("Also on Saturday and Sunday"))
    window_time_zone = StringField(
        _l("Time zone of the window"), validators=[Optional(), Length(max=64)],
        description=_l("Empty: each customer's own time zone. Or e.g. Europe/Brussels."))
    holidays = TextAreaField(_l("Holidays (no sending)"), validators=[Optional()],
                             description=_l("One date per line, as 2026-12-25."))
    max_attempts = IntegerField(_l("Attempts per delivery"), validators=[
        InputRequired(_l("Attempts per delivery: this is required.")),
        NumberRange(min=1, max=50, message=_l("Attempts per delivery: from 1 to 50."))])
    first_backoff_seconds = IntegerField(_l("First retry after (seconds)"), validators=[
        InputRequired(_l("First retry after: this is required.")),
        NumberRange(min=1, max=86_400, message=_l("First retry after: 1 to 86400 seconds."))])
    max_backoff_seconds = IntegerField(_l("Longest wait between retries (seconds)"), validators=[
        InputRequired(_l("Longest wait between retries: this is required.")),
        NumberRange(min=1, max=604_800,
                    message=_l("Longest wait between retries: 1 to 604800 seconds."))])

    def validate_window_end_hour(self, field: IntegerField) -> None:
        start = self.window_start_hour.data
        if field.data is not None and start is not None and field.data <= start:
            raise ValidationError(_l("Send until: the window must end after it starts "
                                     "(e.g. 8 to 20)."))

    def validate_max_backoff_seconds(self, field: IntegerField) -> None:
        first = self.first_backoff_seconds.data
        if field.data is not None and first is not None and field.data < first:
            raise ValidationError(_l("Longest wait between retries: at least the first wait."))

    def validate_window_time_zone(self, field: StringField) -> None:
        if field.data and field.data.strip():
            try:
                ZoneInfo(field.data.strip())
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValidationError(_l("Time zone: unknown; use a name such as "
                                         "Europe/Brussels.")) from exc

    def validate_holidays(self, field: TextAreaField) -> None:
        for line in self.holiday_lines():
            try:
                date.fromisoformat(line)
            except ValueError as exc:
                raise ValidationError(_l("Holidays: '%(line)s' is not a date; write one date "
                                         "per line as 2026-12-25.", line=line[:40])) from exc

    def holiday_lines(self) -> list[str]:
        """The holidays typed, one per line, blanks dropped."""
        return [line.strip() for line in (self.holidays.data or "").splitlines() if line.strip()]

    def values(self) -> dict[str, object]:
        """The cleaned values as the delivery defaults' columns."""
        return {"window_start_hour": self.window_start_hour.data,
                "window_end_hour": self.window_end_hour.data,
                "weekends": bool(self.weekends.data),
                "holidays": sorted({date.fromisoformat(d).isoformat()
                                    for d in self.holiday_lines()}),
                "window_time_zone": (self.window_time_zone.data or "").strip() or None,
                "max_attempts": self.max_attempts.data,
                "first_backoff_seconds": self.first_backoff_seconds.data,
                "max_backoff_seconds": self.max_backoff_seconds.data}


class MessageTypeForm(FlaskForm):
    """One message type: its default channels in order and whether it is mandatory."""

    default_channels = SelectMultipleField(_l("Default channels"), choices=[],
                                           validate_choice=True)
    mandatory = BooleanField(_l("Mandatory (customers cannot opt out)"))

    def validate_default_channels(self, field: SelectMultipleField) -> None:
        if not field.data:
            raise ValidationError(_l("Default channels: choose at least one."))


class ChannelTestForm(FlaskForm):
    """Where a test message goes: an email address, an FCM token, a Peppol ID or a push
    subscription (empty for push: the admin's own subscriptions)."""

    target = TextAreaField(_l("Send the test to"), validators=[Optional(), Length(max=4096)])
