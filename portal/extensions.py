"""Flask extensions, created here and bound to an app in ``create_app``."""

from flask_babel import lazy_gettext as _l
from flask_htmx import HTMX
from flask_login import LoginManager
from flask_wtf import CSRFProtect

csrf = CSRFProtect()
htmx = HTMX()
login_manager = LoginManager()
login_manager.login_view = "auth.sign_in"
login_manager.login_message = _l("Please sign in to see this page.")
# Flask-Login flashes str(message): translated in the reader's language at that moment.
login_manager.localize_callback = str
login_manager.session_protection = "strong"
