"""Words shown for dispute codes, translated at render time; registered as template filters."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.disputes import bp
from portal.models.disputes import Dispute, DisputeReason, DisputeResolution, DisputeStatus

REASONS = {
    DisputeReason.WRONG_AMOUNT: _l("The amount or price is wrong"),
    DisputeReason.NOT_RECEIVED: _l("I did not receive the goods or service"),
    DisputeReason.NOT_ORDERED: _l("I did not order this"),
    DisputeReason.DUPLICATE: _l("I was charged twice"),
    DisputeReason.ALREADY_PAID: _l("I have already paid"),
    DisputeReason.QUALITY: _l("The goods or service were faulty"),
    DisputeReason.OTHER: _l("Something else"),
}


@bp.app_template_filter()
def dispute_status(dispute: Dispute) -> str:
    """Where the dispute stands, in the reader's language (with the outcome once resolved)."""
    if dispute.status is DisputeStatus.RESOLVED:
        if dispute.resolution is DisputeResolution.ACCEPTED:
            return _("Resolved: accepted")
        return _("Resolved: rejected")
    return {DisputeStatus.OPEN: _("Open"), DisputeStatus.UNDER_REVIEW: _("Under review"),
            DisputeStatus.WITHDRAWN: _("Withdrawn")}[dispute.status]


@bp.app_template_filter()
def dispute_reason(reason: DisputeReason) -> str:
    """The reason category as the customer chose it."""
    return str(REASONS[reason])
