"""The ops console's overview page."""

from __future__ import annotations

from functools import wraps

import sqlalchemy as sa
from flask import abort, render_template
from flask_login import current_user, login_required

from portal.db import db_session
from portal.models import Customer, Invoice, InvoiceStatus
from portal.ops import bp


def staff_required(view):
    """Allow signed-in staff only; customers get 403."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_staff:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


@bp.route("")
@staff_required
def overview() -> str:
    """Counts of customers and of documents per status."""
    session = db_session()
    by_status = dict(
        session.execute(sa.select(Invoice.status, sa.func.count()).group_by(Invoice.status)).all()
    )
    return render_template(
        "ops/overview.html",
        customer_count=session.scalar(sa.select(sa.func.count(Customer.id))),
        by_status=[(status, by_status.get(status, 0)) for status in InvoiceStatus],
    )
