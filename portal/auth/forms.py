"""Sign-in and account forms (Flask-WTF: every form carries a CSRF token)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

from portal.auth.passwords import MIN_PASSWORD_LENGTH


def _email_field() -> EmailField:
    return EmailField(
        _l("Email address"),
        validators=[DataRequired(_l("Enter the email address you use for your invoices.")),
                    Email(_l("Enter an email address like name@example.com.")),
                    Length(max=254)],
    )


class SignInForm(FlaskForm):
    """Email and password."""

    email = _email_field()
    password = PasswordField(
        _l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=200)]
    )
    remember = BooleanField(_l("Keep me signed in on this device"))


class EmailOnlyForm(FlaskForm):
    """Just an email address: ask for a sign-in link or a password reset."""

    email = _email_field()


class ConfirmForm(FlaskForm):
    """A button (and CSRF token): opening an emailed link only shows it, so scanners do nothing."""


class CodeForm(FlaskForm):
    """A TOTP code, or one of the recovery codes."""

    code = StringField(
        _l("Code from your authenticator app, or a recovery code"),
        validators=[DataRequired(_l("Enter the 6-digit code your app shows, or a recovery "
                                    "code like abcde-12345.")), Length(max=20)],
    )


class NewPasswordForm(FlaskForm):
    """A new password, typed twice."""

    password = PasswordField(
        _l("New password"),
        validators=[DataRequired(_l("Choose a password.")),
                    Length(min=MIN_PASSWORD_LENGTH, max=200,
                           message=_l("Use at least %(min)d characters.",
                                      min=MIN_PASSWORD_LENGTH))],
    )
    confirm = PasswordField(
        _l("New password again"),
        validators=[DataRequired(_l("Type the password a second time.")),
                    EqualTo("password", _l("The two passwords differ; type them again."))],
    )


class ChangePasswordForm(NewPasswordForm):
    """The current password, then a new one."""

    current = PasswordField(
        _l("Current password"),
        validators=[DataRequired(_l("Enter your current password.")), Length(max=200)],
    )


class RegisterForm(FlaskForm):
    """Self-registration: prove the account is yours with an invoice of it.

    No password here: it is chosen from the link emailed to the address, which
    proves the address is the registrant's.
    """

    account_number = StringField(
        _l("Account or customer number"),
        validators=[DataRequired(_l("Enter the account number printed on your invoice.")),
                    Length(max=40)],
    )
    invoice_number = StringField(
        _l("Number of one of your invoices"),
        validators=[DataRequired(_l("Enter the number of an invoice we sent you.")),
                    Length(max=64)],
    )
    invoice_total = StringField(
        _l("Total amount of that invoice"),
        description=_l("As printed, for example 120.15"),
        validators=[DataRequired(_l("Enter the invoice's total amount, for example 120.15.")),
                    Length(max=24)],
    )
    name = StringField(_l("Your name"), validators=[
        DataRequired(_l("Enter your name.")), Length(max=200)])
    email = _email_field()


class TotpConfirmForm(FlaskForm):
    """The first code from the app, proving it was set up."""

    code = StringField(
        _l("6-digit code from your authenticator app"),
        validators=[DataRequired(_l("Enter the 6-digit code your app shows.")),
                    Length(max=10)],
    )


class TotpDisableForm(FlaskForm):
    """Turning TOTP off needs the password or a current code."""

    password = PasswordField(_l("Password"), validators=[Length(max=200)])
    code = StringField(_l("Or a code from your authenticator app"), validators=[Length(max=20)])

    def validate_code(self, field: StringField) -> None:
        """One of the two must be given."""
        if not (self.password.data or field.data):
            raise ValidationError(_l("Enter your password or a code from your app."))


class EndSessionForm(FlaskForm):
    """Sign out one device (its session id in a hidden field)."""

    session_id = HiddenField(validators=[DataRequired()])
