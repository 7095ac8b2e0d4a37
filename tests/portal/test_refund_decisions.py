"""Two finance approvers deciding the same request at the same moment: exactly one wins."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from portal.db import make_engine
from portal.migrate import upgrade
from portal.models import Payment, PaymentKind, PaymentMethod
from portal.models.refunds import RefundKind, RefundRequest, RefundStatus
from portal.payments import record_payment
from portal.refunds import RefundError, create_request, decide
from tests.portal.pay_helpers import bill


@pytest.fixture
def own_db(databases):
    """Sessions on a migrated database of the test's own (the deciders commit)."""
    engine = make_engine(databases.new_url())
    upgrade(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def test_two_approvers_at_once_one_decision_one_refund(own_db):
    with own_db() as session, session.begin():
        billed = bill(session)
        record_payment(session, billed.inv2, amount=Decimal("120.15"),
                       received_at=datetime(2026, 10, 5, tzinfo=UTC),
                       method=PaymentMethod.BANK_TRANSFER, provider="bank",
                       provider_reference="line-1", actor="test")
        request_id = create_request(session, billed.inv2, kind=RefundKind.REFUND,
                                    amount=Decimal("100.00"), reason="r", context={},
                                    actor="api:crm", auto_approve_limit=Decimal("0")).id
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def approver(name: str, approve: bool) -> None:
        start.wait(timeout=10)
        try:
            with own_db() as session, session.begin():
                request = session.get(RefundRequest, request_id)
                decide(session, request, approve=approve, actor=name, note=name)
            outcomes[name] = "decided"
        except RefundError as error:
            outcomes[name] = f"refused: {error}"

    threads = [threading.Thread(target=approver, args=("staff:a", True)),
               threading.Thread(target=approver, args=("staff:b", False))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(v.split(":")[0] for v in outcomes.values()) == ["decided", "refused"], outcomes
    with own_db() as session:
        request = session.get(RefundRequest, request_id)
        winner = next(name for name, v in outcomes.items() if v == "decided")
        assert request.decided_by == winner
        refunds = session.scalars(sa.select(Payment).where(
            Payment.kind == PaymentKind.REFUND)).all()
        if winner == "staff:a":
            assert request.status is RefundStatus.APPROVED
            assert [r.id for r in refunds] == [request.payment_id]
        else:
            assert request.status is RefundStatus.REJECTED and refunds == []
        loser = next(v for v in outcomes.values() if v != "decided")
        assert f"already {request.status.value} by {winner}" in loser
