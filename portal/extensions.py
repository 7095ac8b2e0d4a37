"""Flask extensions, created here and bound to an app in ``create_app``."""

from flask_htmx import HTMX
from flask_login import LoginManager
from flask_wtf import CSRFProtect

csrf = CSRFProtect()
htmx = HTMX()
login_manager = LoginManager()
login_manager.login_view = "auth.sign_in"
login_manager.login_message = "Please sign in to see this page."
login_manager.session_protection = "strong"
