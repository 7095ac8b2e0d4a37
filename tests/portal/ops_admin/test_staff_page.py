"""The staff accounts page: list, invite, change role, deactivate; only administrators."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.models import Role, SignInSession, User
from portal.ops.staff import StaffError, change_role, deactivate
from tests.factories import make_customer, make_organisation, make_user
from tests.peers import smtp as smtp_peers
from tests.peers.smtp import SmtpPeer
from tests.portal.auth.helpers import (
    deliver,
    events_of,
    link_in,
    post,
    sign_in,
    take_queued_mail,
)
from tests.portal.ops_admin.helpers import make_admin, page_token, sign_in_admin

smtp_peer = smtp_peers.smtp_peer


@pytest.fixture
def staff(session):
    """An administrator, an operator, an agent, an auditor, and a customer."""
    org = make_organisation(session)
    customer = make_customer(session, org, "C1", name="Alice")
    make_user(session, email="alice@example.com", customer=customer)
    return {"admin": make_admin(session),
            "ops": make_user(session, email="ops@example.com", role=Role.BILLING_OPERATOR),
            "agent": make_user(session, email="agent@example.com", role=Role.SUPPORT_AGENT),
            "auditor": make_user(session, email="auditor@example.com", role=Role.AUDITOR)}


@pytest.mark.parametrize("email", ["ops@example.com", "agent@example.com",
                                   "auditor@example.com", "alice@example.com"])
def test_only_administrators_see_or_use_the_staff_page(client, session, staff, email):
    sign_in(client, email)
    assert client.get("/ops/staff").status_code == 403
    token = page_token(client, "/security")
    agent = staff["agent"]
    for path, data in (("/ops/staff/invite", {"invite-email": "x@example.com",
                                              "invite-role": "admin"}),
                       (f"/ops/staff/{agent.id}/role", {f"role-{agent.id}-role": "admin"}),
                       (f"/ops/staff/{agent.id}/deactivate", {})):
        assert client.post(path, data={"csrf_token": token, **data}).status_code == 403
    session.expire_all()
    assert session.get(User, agent.id).role is Role.SUPPORT_AGENT and agent.active
    assert session.scalar(sa.select(User).where(User.email == "x@example.com")) is None


def test_the_list_shows_role_second_factor_and_last_sign_in(client, session, staff):
    sign_in_admin(client, staff["admin"])
    page = client.get("/ops/staff").data.decode()
    for email in ("admin@example.com", "ops@example.com", "agent@example.com"):
        assert email in page
    assert "alice@example.com" not in page  # customers are not staff
    assert "TOTP on" in page and "Billing operator" in page and "Never" in page
    assert 'href="/ops/staff"' in page and 'href="/ops/api-keys"' in page


def test_an_invited_colleague_gets_an_email_sets_a_password_and_lands_in_the_console(
        app, client, session, staff, smtp_peer: SmtpPeer):
    admin = staff["admin"]
    sign_in_admin(client, admin)
    take_queued_mail(app)
    token = page_token(client, "/ops/staff")
    response = client.post("/ops/staff/invite", data={
        "csrf_token": token, "invite-email": "New.Colleague@Example.com",
        "invite-name": "New Colleague", "invite-role": "finance_approver"})
    assert response.status_code == 302
    session.expire_all()
    user = session.scalars(sa.select(User).where(User.email == "new.colleague@example.com")).one()
    assert user.role is Role.FINANCE_APPROVER and user.password_hash is None
    [event] = events_of(session, "staff.invited", str(user.id))
    assert event.actor.startswith(f"staff:{admin.id}:admin:") and event.payload["role"] == \
        "finance_approver"
    [token_id] = take_queued_mail(app)
    assert deliver(app, smtp_peer, token_id)
    [mail] = smtp_peer.messages
    assert mail.parsed()["Subject"] == "You are invited to Herald's ops console"
    token = link_in(mail, "/invitation/")
    other = app.test_client()
    response = post(other, f"/invitation/{token}", password="a long new password",
                    confirm="a long new password")
    assert response.status_code == 302 and response.location.endswith("/ops")
    assert other.get("/ops").status_code == 200
    assert other.get("/ops/staff").status_code == 403  # a finance approver, not an admin


def test_inviting_an_address_with_a_sign_in_or_a_customer_role_is_refused(client, session,
                                                                         staff):
    sign_in_admin(client, staff["admin"])
    token = page_token(client, "/ops/staff")
    taken = client.post("/ops/staff/invite", data={
        "csrf_token": token, "invite-email": "alice@example.com", "invite-role": "auditor"})
    assert taken.status_code == 400 and "already has a sign-in" in taken.data.decode()
    customer = client.post("/ops/staff/invite", data={
        "csrf_token": token, "invite-email": "c@example.com", "invite-role": "customer"})
    assert customer.status_code == 400
    assert session.scalar(sa.select(User).where(User.email == "c@example.com")) is None


def test_changing_a_role_is_logged_with_who_did_it(client, session, staff):
    admin, agent = staff["admin"], staff["agent"]
    sign_in_admin(client, admin)
    token = page_token(client, "/ops/staff")
    response = client.post(f"/ops/staff/{agent.id}/role",
                           data={"csrf_token": token, f"role-{agent.id}-role": "billing_operator"})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(User, agent.id).role is Role.BILLING_OPERATOR
    [event] = events_of(session, "staff.role_changed", str(agent.id))
    assert event.payload == {"from": "support_agent", "to": "billing_operator"}
    assert event.actor.startswith(f"staff:{admin.id}:")


def test_an_administrator_cannot_demote_or_deactivate_themselves(client, session, staff):
    admin = staff["admin"]
    sign_in_admin(client, admin)
    token = page_token(client, "/ops/staff")
    demote = client.post(f"/ops/staff/{admin.id}/role",
                         data={"csrf_token": token, f"role-{admin.id}-role": "auditor"},
                         follow_redirects=True)
    assert "cannot demote or deactivate yourself" in demote.data.decode()
    client.post(f"/ops/staff/{admin.id}/deactivate", data={"csrf_token": token})
    session.expire_all()
    assert session.get(User, admin.id).role is Role.ADMIN and session.get(User, admin.id).active
    assert not events_of(session, "staff.role_changed", str(admin.id))


def test_the_last_administrator_cannot_be_removed(session, staff):
    admin, ops = staff["admin"], staff["ops"]
    with pytest.raises(StaffError) as demoted:
        change_role(session, admin, "auditor", by=ops, actor="test")
    assert demoted.value.code == "last_admin"
    with pytest.raises(StaffError) as deactivated:
        deactivate(session, admin, by=ops, actor="test")
    assert deactivated.value.code == "last_admin"
    second = make_admin(session, "second@example.com")
    assert change_role(session, second, "auditor", by=admin, actor="test")
    assert admin.role is Role.ADMIN


def test_deactivating_ends_every_session_and_refuses_sign_in(app, client, session, staff):
    admin, agent = staff["admin"], staff["agent"]
    theirs = app.test_client()
    sign_in(theirs, agent.email)
    assert theirs.get("/ops").status_code == 200
    sign_in_admin(client, admin)
    token = page_token(client, "/ops/staff")
    response = client.post(f"/ops/staff/{agent.id}/deactivate", data={"csrf_token": token},
                           follow_redirects=True)
    assert "can no longer sign in; 1 sessions ended" in response.data.decode()
    assert theirs.get("/ops").status_code == 302  # signed out at the next request
    session.expire_all()
    assert not session.get(User, agent.id).active
    assert session.scalar(sa.select(sa.func.count(SignInSession.id)).where(
        SignInSession.user_id == agent.id, SignInSession.ended_at.is_(None))) == 0
    [event] = events_of(session, "staff.deactivated", str(agent.id))
    assert event.payload["sessions_ended"] == 1 and event.actor.startswith(f"staff:{admin.id}:")
    again = app.test_client()
    assert "do not match" in sign_in(again, agent.email).data.decode()
    client.post(f"/ops/staff/{agent.id}/reactivate", data={"csrf_token": token})
    assert sign_in(again, agent.email).status_code == 302
    assert events_of(session, "staff.reactivated", str(agent.id))


def test_a_customer_account_is_not_managed_here(client, session, staff):
    sign_in_admin(client, staff["admin"])
    token = page_token(client, "/ops/staff")
    alice = session.scalars(sa.select(User).where(User.email == "alice@example.com")).one()
    assert client.post(f"/ops/staff/{alice.id}/deactivate",
                       data={"csrf_token": token}).status_code == 404
    session.expire_all()
    assert session.get(User, alice.id).active
