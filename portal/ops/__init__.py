"""The billing operators' console (staff only)."""

from flask import Blueprint

bp = Blueprint("ops", __name__, url_prefix="/ops")

from portal.ops import routes  # noqa: E402,F401
