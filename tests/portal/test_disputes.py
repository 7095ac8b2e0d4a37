"""Disputes: opened from the invoice page, followed, withdrawn; reminders stop, waves hear of it."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from distribution.deliveries import Delivery, DeliveryState
from distribution.documents import DatabaseStore
from distribution.events import events_for, verify_chain
from distribution.reminders import ReminderPolicy, Stage
from distribution.runs import WaveOptions
from distribution.waves import ContactSource, SupportContact
from portal.disputes.service import (
    DisputeError,
    add_message,
    open_dispute,
    set_status,
    withdraw,
)
from portal.issuing import invoice_key
from portal.models import Dispute, DisputeStatus, InvoiceStatus
from portal.models.disputes import DisputeReason, DisputeResolution, MessageAuthor
from portal.reminders import create_reminder_run
from tests.portal.test_invoices import billing, csrf_token, invoice, send, sign_in

__all__ = ["billing"]  # the fixture, shared with the invoice tests

POLICY = ReminderPolicy(stages=(Stage(7, 1), Stage(14, 2)))  # no PDFs: quick


def remind(session, today: date):
    return create_reminder_run(session, POLICY, WaveOptions(), today=today,
                               public_url="https://portal.example", created_by="test",
                               store=DatabaseStore())


def reminder_states(session, document) -> list[DeliveryState]:
    return list(session.scalars(sa.select(Delivery.state).join(Delivery.message).where(
        sa.text("messages.subject_key LIKE :p")).params(p=f"reminder:{invoice_key(document)}:%")
        .order_by(Delivery.id)))


def form_page(client, number="INV-A2"):
    page = client.get(f"/invoices/{number}/dispute")
    assert page.status_code == 200
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1)
    return page, token.decode()


def line_ids(document) -> list[str]:
    return [str(line.id) for line in document.lines]


def test_opening_a_dispute_stops_reminders_records_contact_and_events(client, billing,
                                                                        session):
    document = invoice(session, "INV-A2")
    invoice_delivery = send(session, document)  # the wave that sent the invoice
    wave_id = invoice_delivery[0].wave_id
    remind(session, date(2026, 11, 8))  # the 7-day reminder is planned, not sent
    assert set(reminder_states(session, document)) == {DeliveryState.PENDING}

    sign_in(client, "alice@example.com")
    page, token = form_page(client)
    assert b"Fibre internet" in page.data and b'type="checkbox" name="lines"' in page.data
    response = client.post("/invoices/INV-A2/dispute", data={
        "csrf_token": token, "lines": [line_ids(document)[1]], "reason": "wrong_amount",
        "amount": "12,50",
        "description": "I was billed for 229 kWh; my meter says 129. Card 4111 1111 1111 1111."})
    assert response.status_code == 302
    dispute = session.scalars(sa.select(Dispute)).one()
    assert response.location.endswith(f"/disputes/{dispute.id}")
    assert dispute.status is DisputeStatus.OPEN and dispute.amount == Decimal("12.50")
    assert [dl.invoice_line.item_name for dl in dispute.lines] == ["Electricity"]
    assert "4111" not in dispute.description.replace("ending 1111", "")
    assert "[card number ending 1111]" in dispute.description

    session.refresh(document)
    assert document.status is InvoiceStatus.DISPUTED
    assert set(reminder_states(session, document)) == {DeliveryState.CANCELLED}
    contact = session.scalars(sa.select(SupportContact)).one()
    assert contact.source is ContactSource.DISPUTE and contact.wave_id == wave_id
    kinds = [e.kind for e in events_for(session, "invoice", invoice_key(document))]
    assert "reminder.stopped" in kinds and "dispute.opened" in kinds
    opened = next(e for e in events_for(session, "invoice", invoice_key(document))
                  if e.kind == "dispute.opened")
    assert opened.payload["lines"] == ["2"] and "meter" not in str(opened.payload)
    assert verify_chain(session) is None

    follow = client.get(response.location).data.decode()
    assert "We stopped the payment reminders" in follow and "Open" in follow
    assert "Electricity" in follow and "€12.50" in follow
    invoice_page = client.get("/invoices/INV-A2").data.decode()
    assert "You disputed this invoice on" in invoice_page
    assert "Reminders paused while your dispute is handled" in invoice_page
    assert "Dispute this invoice" not in invoice_page
    # While it is disputed, the reminder run leaves it alone.
    remind(session, date(2026, 11, 15))
    assert set(reminder_states(session, document)) == {DeliveryState.CANCELLED}


def test_rejected_dispute_lets_reminders_resume_at_the_next_run(session, billing):
    document = invoice(session, "INV-A2")
    send(session, document)
    remind(session, date(2026, 11, 8))
    dispute = open_dispute(session, document, reason=DisputeReason.NOT_RECEIVED,
                           description="Never arrived", actor="test")
    set_status(session, dispute, DisputeStatus.UNDER_REVIEW, actor="ops")
    assert document.status is InvoiceStatus.DISPUTED
    set_status(session, dispute, DisputeStatus.RESOLVED, resolution=DisputeResolution.REJECTED,
               resolution_text="Delivered on 3 October, signed for.", actor="ops")
    assert document.status is InvoiceStatus.ISSUED and dispute.closed_at is not None
    remind(session, date(2026, 11, 15))
    states = reminder_states(session, document)
    assert states[:2] == [DeliveryState.CANCELLED] * 2  # the 7-day one, stopped
    assert states[2:] == [DeliveryState.PENDING] * 2  # the 14-day one, email and portal


def test_accepted_dispute_keeps_reminders_stopped(session, billing):
    document = invoice(session, "INV-A2")
    dispute = open_dispute(session, document, reason=DisputeReason.DUPLICATE,
                           description="Twice", actor="test")
    set_status(session, dispute, DisputeStatus.RESOLVED, resolution=DisputeResolution.ACCEPTED,
               resolution_text="Sorry; a credit note follows.", actor="ops")
    assert document.status is InvoiceStatus.DISPUTED
    send(session, document)
    remind(session, date(2026, 11, 15))
    assert reminder_states(session, document) == []


def test_withdrawing_restores_the_status_payments_imply(client, billing, session):
    document = invoice(session, "INV-A1")  # partly paid
    dispute = open_dispute(session, document, reason=DisputeReason.OTHER,
                           description="Question", actor="test")
    sign_in(client, "alice@example.com")
    token = csrf_token(client, f"/disputes/{dispute.id}")
    response = client.post(f"/disputes/{dispute.id}/withdraw", data={"csrf_token": token})
    assert response.status_code == 302
    session.refresh(dispute)
    session.refresh(document)
    assert dispute.status is DisputeStatus.WITHDRAWN
    assert document.status is InvoiceStatus.PARTIALLY_PAID
    kinds = [e.kind for e in events_for(session, "invoice", invoice_key(document))]
    assert kinds[-1] == "dispute.withdrawn"
    page = client.get(f"/disputes/{dispute.id}").data.decode()
    assert "Withdrawn" in page and "Withdraw my dispute" not in page


def test_messages_thread_masks_payment_details(client, billing, session):
    document = invoice(session, "INV-A2")
    dispute = open_dispute(session, document, reason=DisputeReason.OTHER,
                           description="See below", actor="test")
    add_message(session, dispute, "We are checking the meter readings.",
                author=MessageAuthor.STAFF, actor="ops")
    sign_in(client, "alice@example.com")
    token = csrf_token(client, f"/disputes/{dispute.id}")
    response = client.post(f"/disputes/{dispute.id}/messages", data={
        "csrf_token": token, "body": "Refund to BE68 5390 0754 7034 please"})
    assert response.status_code == 302
    page = client.get(f"/disputes/{dispute.id}").data.decode()
    assert "We are checking the meter readings." in page and "Our team" in page
    assert "[IBAN ending 7034]" in page and "5390" not in page
    empty = client.post(f"/disputes/{dispute.id}/messages",
                        data={"csrf_token": token, "body": "  "})
    assert empty.status_code == 422 and b"Write your message first." in empty.data


def test_my_disputes_lists_only_mine(client, billing, session):
    mine = open_dispute(session, invoice(session, "INV-A2"), reason=DisputeReason.QUALITY,
                        description="Slow", actor="test")
    theirs = open_dispute(session, invoice(session, "INV-B1"), reason=DisputeReason.OTHER,
                          description="Bob's", actor="test")
    sign_in(client, "alice@example.com")
    page = client.get("/disputes").data.decode()
    assert f"/disputes/{mine.id}" in page and f"/disputes/{theirs.id}" not in page
    assert "The goods or service were faulty" in page


@pytest.mark.parametrize("data, message", [
    ({"reason": "wrong_amount", "description": ""}, b"Write a few words about what is wrong."),
    ({"description": "x"}, b"Choose what is wrong."),
    ({"reason": "wrong_amount", "description": "x", "amount": "twelve"},
     b"Enter an amount like 12.50"),
    ({"reason": "wrong_amount", "description": "x", "amount": "-3"}, b"above 0"),
    ({"reason": "wrong_amount", "description": "x", "amount": "9999"},
     b"cannot be more than the invoice total"),
    ({"reason": "wrong_amount", "description": "x" * 2001}, b"2000 characters or fewer"),
])
def test_bad_input_names_the_field_and_writes_nothing(client, billing, session, data, message):
    sign_in(client, "alice@example.com")
    _, token = form_page(client)
    response = client.post("/invoices/INV-A2/dispute", data={"csrf_token": token, **data})
    assert response.status_code == 422
    assert message in response.data
    assert session.scalar(sa.select(sa.func.count()).select_from(Dispute)) == 0
    assert invoice(session, "INV-A2").status is InvoiceStatus.ISSUED


def test_forms_need_the_csrf_token(client, billing, session):
    dispute = open_dispute(session, invoice(session, "INV-A2"), reason=DisputeReason.OTHER,
                           description="x", actor="test")
    sign_in(client, "alice@example.com")
    for path, data in (("/invoices/INV-A3/dispute", {"reason": "other", "description": "x"}),
                       (f"/disputes/{dispute.id}/messages", {"body": "hello"}),
                       (f"/disputes/{dispute.id}/withdraw", {})):
        assert client.post(path, data=data).status_code == 400
    session.refresh(dispute)
    assert dispute.status is DisputeStatus.OPEN and not dispute.messages


def test_another_customers_invoice_line_and_dispute_are_404(client, billing, session):
    bobs = open_dispute(session, invoice(session, "INV-B1"), reason=DisputeReason.OTHER,
                        description="Bob's", actor="test")
    sign_in(client, "alice@example.com")
    token = csrf_token(client)
    assert client.get("/invoices/INV-B1/dispute").status_code == 404
    assert client.post("/invoices/INV-B1/dispute", data={
        "csrf_token": token, "reason": "other", "description": "x"}).status_code == 404
    assert client.get(f"/disputes/{bobs.id}").status_code == 404
    assert client.post(f"/disputes/{bobs.id}/messages",
                       data={"csrf_token": token, "body": "hi"}).status_code == 404
    assert client.post(f"/disputes/{bobs.id}/withdraw",
                       data={"csrf_token": token}).status_code == 404
    assert client.get("/disputes/999999").status_code == 404
    # A line of Bob's invoice ticked on Alice's form.
    bob_line = line_ids(invoice(session, "INV-B1"))[0]
    assert client.post("/invoices/INV-A2/dispute", data={
        "csrf_token": token, "reason": "other", "description": "x",
        "lines": [bob_line]}).status_code == 404
    session.refresh(bobs)
    assert bobs.status is DisputeStatus.OPEN and not bobs.messages


def test_second_dispute_on_the_same_invoice_goes_to_the_open_one(client, billing, session):
    first = open_dispute(session, invoice(session, "INV-A2"), reason=DisputeReason.OTHER,
                         description="x", actor="test")
    sign_in(client, "alice@example.com")
    response = client.get("/invoices/INV-A2/dispute")
    assert response.status_code == 302 and response.location.endswith(f"/disputes/{first.id}")
    with pytest.raises(DisputeError, match="already has an open dispute"):
        open_dispute(session, invoice(session, "INV-A2"), reason=DisputeReason.OTHER,
                     description="again", actor="test")


def test_service_rules(session, billing):
    note = invoice(session, "CN-A1")
    with pytest.raises(DisputeError, match="Credit notes cannot be disputed"):
        open_dispute(session, note, reason=DisputeReason.OTHER, description="x", actor="t")
    document = invoice(session, "INV-A2")
    with pytest.raises(DisputeError) as error:
        open_dispute(session, document, reason=DisputeReason.OTHER, description="x",
                     lines=invoice(session, "INV-A1").lines, actor="t")
    assert error.value.field == "lines"
    dispute = open_dispute(session, document, reason=DisputeReason.OTHER, description="x",
                           actor="t")
    with pytest.raises(DisputeError, match="accepted or rejected"):
        set_status(session, dispute, DisputeStatus.RESOLVED, actor="ops")
    withdraw(session, dispute, actor="t")
    with pytest.raises(DisputeError, match="cannot become"):
        set_status(session, dispute, DisputeStatus.UNDER_REVIEW, actor="ops")
    with pytest.raises(DisputeError, match="closed"):
        add_message(session, dispute, "hello?", author=MessageAuthor.CUSTOMER, actor="t")
    # Staff may still answer on a closed dispute.
    add_message(session, dispute, "Noted.", author=MessageAuthor.STAFF, actor="ops")


def test_dispute_without_any_delivery_still_opens(session, billing):
    # Bob's invoice was never sent through distribution: no recipient, no wave to steer.
    dispute = open_dispute(session, invoice(session, "INV-B1"), reason=DisputeReason.OTHER,
                           description="x", actor="t")
    assert dispute.id and session.scalar(sa.select(sa.func.count()).select_from(
        SupportContact)) == 0


def test_staff_have_no_customer_dispute_pages(client, billing, session):
    from portal.models import Role
    from tests.factories import make_user

    make_user(session, email="ops@example.com", role=Role.SUPPORT_AGENT)
    sign_in(client, "ops@example.com")
    assert client.get("/disputes").status_code == 403


def test_customer_follows_the_resolution(client, billing, session):
    document = invoice(session, "INV-A2")
    dispute = open_dispute(session, document, reason=DisputeReason.WRONG_AMOUNT,
                           description="x", actor="test")
    set_status(session, dispute, DisputeStatus.UNDER_REVIEW, actor="ops")
    sign_in(client, "alice@example.com")
    assert "Under review" in client.get(f"/disputes/{dispute.id}").data.decode()
    set_status(session, dispute, DisputeStatus.RESOLVED, resolution=DisputeResolution.REJECTED,
               resolution_text="The meter reading of 3 October is correct.", actor="ops")
    page = client.get(f"/disputes/{dispute.id}").data.decode()
    assert "Resolved: rejected" in page and "The meter reading of 3 October" in page
    assert "Send message" not in page and "Withdraw my dispute" not in page
    history = client.get("/invoices/INV-A2").data.decode()
    assert "Your dispute is being reviewed" in history
    assert "Your dispute was rejected on" in history
    assert "Dispute this invoice" in history  # it may be disputed again


@pytest.mark.parametrize("path", ["/disputes", "/disputes/1", "/invoices/INV-A2/dispute"])
def test_dispute_pages_need_sign_in(client, billing, path):
    response = client.get(path)
    assert response.status_code == 302 and "/sign-in" in response.location
