"""The billing operators' console (staff only)."""

from flask import Blueprint

bp = Blueprint("ops", __name__, url_prefix="/ops")

from portal.ops import labels, log_views, routes, run_views  # noqa: E402,F401
