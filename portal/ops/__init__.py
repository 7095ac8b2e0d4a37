"""The billing operators' console (staff only)."""

from flask import Blueprint

bp = Blueprint("ops", __name__, url_prefix="/ops")

from portal.ops import (  # noqa: E402,F401
    api_key_views,
    approvals,
    customer_views,
    failures,
    labels,
    log_views,
    routes,
    run_views,
    settings_views,
    staff_views,
    template_views,
    webhook_views,
)
