"""Forms of the ops console's runs and waves pages (Flask-WTF: CSRF on each)."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    FloatField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length as MaxLength
from wtforms.validators import NumberRange, Optional, ValidationError

from distribution.runs import WaveOptions
from portal.models import CustomerKind, DocumentKind
from portal.runs import RunSelection


class RunForm(FlaskForm):
    """Which documents a run covers and how its waves release them."""

    name = StringField(_l("Name"), validators=[Optional(), MaxLength(max=200)],
                       description=_l("What operators will recognise, e.g. 'November invoices'."))
    kind = SelectField(_l("Documents"), choices=[
        SelectChoice(DocumentKind.INVOICE.value, _l("Invoices")),
        SelectChoice(DocumentKind.CREDIT_NOTE.value, _l("Credit notes"))])
    issued_from = DateField(_l("Issued from"), validators=[Optional()])
    issued_to = DateField(_l("Issued up to"), validators=[Optional()])
    segment = SelectField(_l("Customers"), choices=[
        SelectChoice("", _l("All customers")),
        SelectChoice(CustomerKind.CONSUMER.value, _l("Consumers")),
        SelectChoice(CustomerKind.BUSINESS.value, _l("Businesses"))], default="")
    unpaid_only = BooleanField(_l("Only documents not paid yet"))
    wave_size = IntegerField(_l("Deliveries per wave"),
                             validators=[Optional(), NumberRange(min=1, max=10_000_000)],
                             description=_l("Empty: one wave for the whole run."))
    rate_per_minute = FloatField(_l("Releases per minute"), default=60.0,
                                 validators=[NumberRange(min=0.1, max=100_000)])
    window_start_hour = IntegerField(_l("Send from (hour)"), default=8,
                                     validators=[NumberRange(min=0, max=23)])
    window_end_hour = IntegerField(_l("Send until (hour)"), default=20,
                                   validators=[NumberRange(min=1, max=24)])
    weekends = BooleanField(_l("Also on Saturday and Sunday"))
    window_time_zone = StringField(
        _l("Time zone of the window"), validators=[Optional(), MaxLength(max=64)],
        description=_l("Empty: each customer's own time zone. Or e.g. Europe/Brussels."))
    holidays = TextAreaField(_l("Holidays (no sending)"), validators=[Optional()],
                             description=_l("One date per line, as 2026-12-25."))
    capacity_per_hour = FloatField(
        _l("Support capacity (contacts per hour)"),
        validators=[Optional(), NumberRange(min=0.1, max=1_000_000)],
        description=_l("With a contact rate, Herald plans releases so forecast contacts "
                       "stay under this."))
    contact_rate = FloatField(
        _l("Expected contacts per delivered document"),
        validators=[Optional(), NumberRange(min=0, max=1)],
        description=_l("For example 0.02 when 2 in 100 customers call or write."))
    auto_continue = BooleanField(_l("Start the next wave when one is done"), default=True)
    preview = SubmitField(_l("Preview"))
    create = SubmitField(_l("Create run"))

    def validate_issued_to(self, field: DateField) -> None:
        if field.data and self.issued_from.data and field.data < self.issued_from.data:
            raise ValidationError(_l("The end date must be on or after the start date."))

    def validate_window_end_hour(self, field: IntegerField) -> None:
        start = self.window_start_hour.data
        if field.data is not None and start is not None and field.data <= start:
            raise ValidationError(_l("The window must end after it starts (e.g. 8 to 20)."))

    def validate_window_time_zone(self, field: StringField) -> None:
        if field.data:
            try:
                ZoneInfo(field.data.strip())
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValidationError(_l("Unknown time zone: use a name such as "
                                         "Europe/Brussels.")) from exc

    def validate_holidays(self, field: TextAreaField) -> None:
        for line in self._holiday_lines():
            try:
                date.fromisoformat(line)
            except ValueError as exc:
                raise ValidationError(_l("'%(line)s' is not a date: write one date per line "
                                         "as 2026-12-25.", line=line)) from exc

    def validate(self, extra_validators=None) -> bool:
        """The fields' own checks, then the one that needs two fields (both are optional)."""
        valid = super().validate(extra_validators)
        if (self.contact_rate.data is None) != (self.capacity_per_hour.data is None):
            self.contact_rate.errors = [*self.contact_rate.errors, _l(
                "Give the support capacity and the contact rate together, or neither.")]
            valid = False
        return valid

    def _holiday_lines(self) -> list[str]:
        return [line.strip() for line in (self.holidays.data or "").splitlines() if line.strip()]

    def selection(self) -> RunSelection:
        """The documents chosen."""
        return RunSelection(kind=DocumentKind(self.kind.data),
                            issued_from=self.issued_from.data, issued_to=self.issued_to.data,
                            customer_kind=CustomerKind(self.segment.data)
                            if self.segment.data else None,
                            unpaid_only=bool(self.unpaid_only.data))

    def options(self) -> WaveOptions:
        """How the waves release."""
        return WaveOptions(
            wave_size=self.wave_size.data, rate_per_minute=float(self.rate_per_minute.data),
            window_start_hour=self.window_start_hour.data,
            window_end_hour=self.window_end_hour.data,
            weekdays=tuple(range(7)) if self.weekends.data else (0, 1, 2, 3, 4),
            holidays=tuple(sorted(set(self._holiday_lines()))),
            window_time_zone=(self.window_time_zone.data or "").strip() or None,
            capacity_per_hour=self.capacity_per_hour.data, contact_rate=self.contact_rate.data,
            auto_continue=bool(self.auto_continue.data))


class WaveActionForm(FlaskForm):
    """Start, pause, resume or cancel a wave (the button pressed says which)."""

    reason = StringField(_l("Reason"), validators=[Optional(), MaxLength(max=300)])


class WaveRateForm(FlaskForm):
    """A new release rate for a running or paused wave."""

    rate_per_minute = FloatField(_l("Releases per minute"),
                                 validators=[NumberRange(min=0.1, max=100_000)])
