"""Disputes: customers contest invoices or lines and follow the answer (service for ops and API)."""

from flask import Blueprint

bp = Blueprint("disputes", __name__)

from portal.disputes import labels, routes  # noqa: E402,F401
