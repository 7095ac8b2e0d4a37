"""The ops console's overview page."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template

from portal.db import db_session
from portal.models import Customer, Invoice, InvoiceStatus
from portal.ops import bp
from portal.ops.access import staff_required


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
