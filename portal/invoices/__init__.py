"""Customers' view of their invoices and credit notes."""

from flask import Blueprint

bp = Blueprint("invoices", __name__, url_prefix="/invoices")

from portal.invoices import routes  # noqa: E402,F401
