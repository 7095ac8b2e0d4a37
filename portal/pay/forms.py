"""The pay pages' forms (Flask-WTF: every one carries a CSRF token)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, RadioField, StringField
from wtforms.validators import DataRequired, Email, Length, ValidationError


class RecoveryForm(FlaskForm):
    """The billing email address a fresh link is sent to."""

    email = EmailField(
        _l("Your billing email address"),
        validators=[DataRequired(_l("Enter the email address your invoices are sent to.")),
                    Email(_l("Enter an email address like name@example.com.")),
                    Length(max=254)],
    )


class PayForm(FlaskForm):
    """How to pay and how much (the open balance unless the customer pays part of it)."""

    provider = RadioField(_l("How do you want to pay?"),
                          validators=[DataRequired(_l("Choose how you want to pay."))])
    amount = StringField(_l("Amount to pay"),
                         validators=[DataRequired(_l("Enter the amount you want to pay."))])

    def __init__(self, *args, balance: Decimal, choices: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.balance = balance
        self.provider.choices = choices
        if not self.is_submitted():
            self.amount.data = f"{balance:.2f}"
            self.provider.data = choices[0][0] if choices else None

    def validate_amount(self, field: StringField) -> None:
        """An amount from 0.01 up to the open balance, with a dot or a comma."""
        try:
            value = Decimal((field.data or "").strip().replace(" ", "").replace(",", "."))
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value != value.quantize(Decimal("0.01")) \
                or not Decimal("0.01") <= value <= self.balance:
            raise ValidationError(_("Enter an amount from 0.01 to %(balance)s, like %(example)s.",
                                    balance=f"{self.balance:.2f}",
                                    example=f"{self.balance:.2f}"))
        self.amount_value = value
