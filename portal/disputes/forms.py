"""Dispute forms (Flask-WTF: every one carries a CSRF token)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from portal.disputes.labels import REASONS
from portal.disputes.service import MAX_TEXT


def parse_amount(text: str) -> Decimal:
    """``12,50``, ``12.50`` or ``1.234,50`` → a Decimal; ValueError when it is not an amount."""
    text = text.strip().replace(" ", "").replace("\u00a0", "").lstrip("€$£")
    if "," in text and "." in text:  # the first of the two separates thousands
        thousands = "," if text.index(",") < text.index(".") else "."
        text = text.replace(thousands, "")
    text = text.replace(",", ".")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(text) from exc
    if not amount.is_finite():
        raise ValueError(text)
    return amount


class DisputeForm(FlaskForm):
    """What is wrong with the invoice; the lines come as checkboxes named ``lines``."""

    reason = RadioField(_l("What is wrong?"),
                        choices=[SelectChoice(k.value, v) for k, v in REASONS.items()],
                        validators=[DataRequired(_l("Choose what is wrong."))])
    description = TextAreaField(
        _l("Tell us more"),
        validators=[DataRequired(_l("Write a few words about what is wrong.")),
                    Length(max=MAX_TEXT, message=_l("Keep it to %(max)d characters or fewer."))])
    amount = StringField(_l("Amount you dispute (optional)"), validators=[Optional()])

    def validate_amount(self, field: StringField) -> None:
        """Accept amounts as people type them in English, Dutch or Spanish."""
        if not field.data:
            field.parsed = None
            return
        try:
            field.parsed = parse_amount(field.data)
        except ValueError:
            raise ValidationError(_l("Enter an amount like 12.50, or leave it empty.")) from None
        if field.parsed <= 0:
            raise ValidationError(_l("Enter an amount above 0, or leave it empty."))
        if field.parsed.as_tuple().exponent < -2:
            raise ValidationError(_l("Enter the amount with at most two decimals."))


class MessageForm(FlaskForm):
    """A message added to a dispute's thread."""

    body = TextAreaField(
        _l("Your message"),
        validators=[DataRequired(_l("Write your message first.")),
                    Length(max=MAX_TEXT, message=_l("Keep it to %(max)d characters or fewer."))])


class WithdrawForm(FlaskForm):
    """Withdrawing a dispute: a button and its CSRF token."""
