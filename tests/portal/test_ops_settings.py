"""The ops settings page: admins only; seller, branding, sending defaults and message types
edited and logged with old and new values; channels read-only with secrets hidden; a real
test send per channel against the local SMTP, push, FCM and Peppol peers."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from distribution.channels.email_settings import SmtpSettings
from distribution.events import Event
from distribution.preferences import MessageType
from portal.models import Organisation, Role
from portal.models.base import utcnow
from portal.ops.settings_store import check_logo
from portal.sending_defaults import delivery_defaults, sending_policy
from tests.factories import make_customer, make_organisation, make_user
from tests.peers import fcm_server as fcm_peers
from tests.peers import smtp as smtp_peers
from tests.peers.smtp import SmtpPeer
from tests.peers.webpush_service import (  # noqa: F401 - the fixtures are used by name
    PushService,
    push_service_factory_fixture,
    push_service_fixture,
)
from tests.portal.test_web import sign_in
from tests.totp_codes import previous_step_code

smtp_peer = smtp_peers.smtp_peer
fcm_server = fcm_peers.fcm_server

PAGE = "/ops/settings"
SMTP_PASSWORD = "smtp-Pa55word-never-shown"
PEPPOL_TOKEN = "peppol-token-never-shown"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" ' \
      b'height="10" fill="#1d4ed8"/></svg>'


def make_admin(session, email: str = "admin@example.com"):
    """An administrator with TOTP on (every administrator must have it)."""
    user = make_user(session, email=email, role=Role.ADMIN)
    user.totp_secret = pyotp.random_base32()
    user.totp_enabled_at = utcnow()
    session.flush()
    return user


def sign_in_admin(client, user) -> None:
    """Password, then a current TOTP code."""
    response = sign_in(client, user.email)
    assert response.location.endswith("/sign-in/code"), response.location
    page = client.get("/sign-in/code")
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1)
    response = client.post("/sign-in/code", data={
        "csrf_token": token.decode(), "code": previous_step_code(user.totp_secret)})
    assert response.status_code == 302 and "/sign-in" not in response.location


def token_of(client, path: str = PAGE) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return re.search(rb'"X-CSRFToken": "([^"]+)"', page.data).group(1).decode()


def events(session, kind: str) -> list[Event]:
    session.expire_all()
    return list(session.scalars(sa.select(Event).where(Event.kind == kind).order_by(Event.id)))


@pytest.fixture
def org(session):
    return make_organisation(session)


@pytest.fixture
def admin(client, session, org):
    user = make_admin(session)
    sign_in_admin(client, user)
    return user


SELLER = {"legal_name": "Testing Telecom NV", "vat_id": "BE0123456749",
          "address_line1": "Rue de la Loi 1", "postal_code": "1000", "city": "Bruxelles",
          "country_code": "BE", "iban": "BE68 5390 0754 7034", "bic": "GKCCBEBB",
          "peppol_endpoint": "0208:0123456749", "default_currency": "EUR"}


@pytest.mark.parametrize("role", [Role.BILLING_OPERATOR, Role.SUPPORT_AGENT, Role.AUDITOR])
def test_staff_other_than_admins_get_403_on_every_settings_route(client, session, org, role):
    make_user(session, email="staff@example.com", role=role)
    sign_in(client, "staff@example.com")
    token = token_of(client, "/ops")
    assert client.get(PAGE).status_code == 403
    assert client.get(f"/ops/settings/organisations/{org.id}/logo").status_code == 403
    for path in (f"/ops/settings/organisations/{org.id}/seller", "/ops/settings/seller",
                 f"/ops/settings/organisations/{org.id}/branding", "/ops/settings/sending",
                 "/ops/settings/message-types/invoice", "/ops/settings/channels/email/test"):
        assert client.post(path, data={"csrf_token": token, **SELLER}).status_code == 403, path
    assert b"/ops/settings" not in client.get("/ops").data  # no link to a page they cannot use
    assert not events(session, "settings.seller_changed")


def test_customers_get_403_and_strangers_are_sent_to_sign_in(client, session, org):
    assert client.get(PAGE).status_code == 302
    customer = make_customer(session, org, "C1")
    make_user(session, email="alice@example.com", customer=customer)
    sign_in(client, "alice@example.com")
    assert client.get(PAGE).status_code == 403


def test_admin_sees_the_seller_and_channels_with_secrets_hidden(app, client, session, admin,
                                                                 monkeypatch, tmp_path):
    smtp = SmtpSettings(host="mail.example.net", port=587, from_address="billing@herald.test",
                        message_id_domain="herald.test", starttls=True, username="herald",
                        password=SMTP_PASSWORD)
    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(
        app.config["HERALD"], smtp=smtp, peppol_api_url="https://ap.example.net/api",
        peppol_api_token=PEPPOL_TOKEN))
    page = client.get(PAGE)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'value="BE68539007547034"' in text and 'value="0208:0123456749"' in text
    assert "mail.example.net" in text and "SMTP_PASSWORD" in text and "PEPPOL_API_TOKEN" in text
    assert SMTP_PASSWORD not in text and PEPPOL_TOKEN not in text
    assert "set (hidden)" in text
    assert "read-only" in text  # says where channel settings come from
    assert 'href="/ops/settings"' in text  # the admin's menu links here


def test_seller_errors_name_the_field_and_nothing_is_stored(client, session, org, admin):
    token = token_of(client)
    bad = {**SELLER, "iban": "BE68 5390 0754 7035", "bic": "GKCC", "vat_id": "0123456749",
           "peppol_endpoint": "0208:0123456748", "country_code": "Belgium",
           "csrf_token": token}
    response = client.post(f"/ops/settings/organisations/{org.id}/seller", data=bad)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    for message in ("IBAN: the check digits do not match", "BIC: 8 or 11 letters",
                    "VAT ID: start with the two-letter country prefix", "Peppol ID:",
                    "Country code: two letters"):
        assert message in text, message
    assert 'aria-invalid="true"' in text
    session.expire_all()
    assert session.get(Organisation, org.id).iban == "BE68539007547034"
    assert not events(session, "settings.seller_changed")


def test_seller_change_is_stored_and_logged_with_old_and_new_values(client, session, org,
                                                                     admin):
    token = token_of(client)
    response = client.post(f"/ops/settings/organisations/{org.id}/seller", data={
        **SELLER, "csrf_token": token, "iban": "nl91 abna 0417 1643 00", "bic": "ABNANL2A",
        "trading_name": "Telecom"})
    assert response.status_code == 302
    session.expire_all()
    stored = session.get(Organisation, org.id)
    assert (stored.iban, stored.bic, stored.trading_name) == ("NL91ABNA0417164300", "ABNANL2A",
                                                              "Telecom")
    [event] = events(session, "settings.seller_changed")
    assert event.payload["changes"]["iban"] == ["BE68539007547034", "NL91ABNA0417164300"]
    assert event.payload["changes"]["trading_name"] == [None, "Telecom"]
    assert "legal_name" not in event.payload["changes"]
    assert event.actor.startswith(f"staff:{admin.id}:admin:")
    # Saving the same again changes nothing and logs nothing.
    client.post(f"/ops/settings/organisations/{org.id}/seller", data={
        **SELLER, "csrf_token": token, "iban": "NL91ABNA0417164300", "bic": "ABNANL2A",
        "trading_name": "Telecom"})
    assert len(events(session, "settings.seller_changed")) == 1


def test_branding_takes_png_and_svg_and_refuses_other_files(client, session, org, admin):
    token = token_of(client)
    url = f"/ops/settings/organisations/{org.id}/branding"

    def upload(data: bytes, name: str, colour: str = "#112233"):
        import io
        return client.post(url, data={"csrf_token": token, "primary_colour": colour,
                                      "accent_colour": "#0f172a",
                                      "logo": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")

    assert upload(PNG, "logo.png").status_code == 302
    session.expire_all()
    assert session.get(Organisation, org.id).logo == PNG
    assert session.get(Organisation, org.id).primary_colour == "#112233"
    logo = client.get(f"/ops/settings/organisations/{org.id}/logo")
    assert logo.data == PNG and logo.mimetype == "image/png"
    [event] = events(session, "settings.branding_changed")
    assert event.payload["changes"]["primary_colour"] == ["#1d4ed8", "#112233"]
    assert event.payload["changes"]["logo"][1]["bytes"] == len(PNG)

    for data, name, message in (
            (b"GIF89a....", "logo.gif", "Logo: use a PNG, JPEG or SVG image."),
            (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
             "x.svg", "Logo: the SVG contains scripts"),
            (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "y.svg",
             "Logo: the SVG contains scripts"),
            (b"\x89PNG\r\n\x1a\n" + b"0" * (600 * 1024), "big.png", "the limit is 512 KB")):
        response = upload(data, name)
        assert response.status_code == 422, name
        assert message in response.get_data(as_text=True), name
    bad_colour = upload(SVG, "logo.svg", colour="red")
    assert bad_colour.status_code == 422
    assert "Brand colour: a hex colour" in bad_colour.get_data(as_text=True)
    assert upload(SVG, "logo.svg").status_code == 302
    session.expire_all()
    assert session.get(Organisation, org.id).logo_mime_type == "image/svg+xml"


def test_svg_with_external_references_is_refused():
    from portal.ops.settings_store import LogoError
    for svg in (b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink">'
                b'<image x:href="https://tracker.example/p.png"/></svg>',
                b'<svg xmlns="http://www.w3.org/2000/svg"><style>@import url(//e.example/a.css)'
                b'</style></svg>',
                b'<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>'):
        with pytest.raises(LogoError):
            check_logo(svg)
    assert check_logo(SVG) == "image/svg+xml"


def test_sending_defaults_are_validated_stored_logged_and_used(app, client, session, admin):
    token = token_of(client)
    form = {"csrf_token": token, "window_start_hour": "9", "window_end_hour": "8",
            "holidays": "2026-12-25\nChristmas", "window_time_zone": "Mars/Olympus",
            "max_attempts": "0", "first_backoff_seconds": "60", "max_backoff_seconds": "30"}
    response = client.post("/ops/settings/sending", data=form)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    for message in ("Send until: the window must end after it starts",
                    "Holidays: 'Christmas' is not a date", "Time zone: unknown",
                    "Attempts per delivery: from 1 to 50",
                    "Longest wait between retries: at least the first wait"):
        assert message in text, message
    response = client.post("/ops/settings/sending", data={
        **form, "window_end_hour": "18", "holidays": "2026-12-26\n2026-12-25\n",
        "window_time_zone": "Europe/Brussels", "max_attempts": "3",
        "max_backoff_seconds": "600", "weekends": "y"})
    assert response.status_code == 302
    session.expire_all()
    stored = delivery_defaults(session)
    assert (stored.window_start_hour, stored.window_end_hour, stored.weekends,
            stored.holidays) == (9, 18, True, ["2026-12-25", "2026-12-26"])
    [event] = events(session, "settings.delivery_defaults_changed")
    assert event.payload["changes"]["max_attempts"] == [8, 3]
    assert event.payload["changes"]["window_start_hour"] == [8, 9]
    policy = sending_policy(session, timedelta(seconds=120))
    assert (policy.max_attempts, policy.first_backoff, policy.max_backoff) == (
        3, timedelta(seconds=60), timedelta(seconds=600))


def test_message_type_defaults_and_mandatory_flag(client, session, admin):
    token = token_of(client)
    response = client.post("/ops/settings/message-types/receipt", data={
        "csrf_token": token, "type-receipt-default_channels": ["portal", "email"],
        "type-receipt-mandatory": "y"})
    assert response.status_code == 302
    session.expire_all()
    kind = session.get(MessageType, "receipt")
    assert (kind.default_channels, kind.mandatory) == (["email", "portal"], True)
    [event] = events(session, "settings.message_type_changed")
    assert event.payload["changes"] == {"mandatory": [False, True],
                                        "default_channels": [["email"], ["email", "portal"]]}
    empty = client.post("/ops/settings/message-types/receipt", data={"csrf_token": token})
    assert empty.status_code == 422
    assert "Default channels: choose at least one." in empty.get_data(as_text=True)
    assert client.post("/ops/settings/message-types/nope",
                       data={"csrf_token": token}).status_code == 404


def _smtp_on(app, monkeypatch, peer: SmtpPeer) -> None:
    smtp = SmtpSettings(host=peer.host, port=peer.port, from_address="billing@herald.test",
                        message_id_domain="herald.test", timeout=5)
    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(app.config["HERALD"],
                                                                  smtp=smtp))


def test_email_test_reaches_the_smtp_peer_and_is_logged(app, client, session, admin,
                                                        monkeypatch, smtp_peer):
    _smtp_on(app, monkeypatch, smtp_peer)
    token = token_of(client)
    response = client.post("/ops/settings/channels/email/test",
                           data={"csrf_token": token, "target": "it@example.com"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Test sent to it@example.com." in response.get_data(as_text=True)
    [message] = smtp_peer.messages
    assert list(message.rcpt_tos) == ["it@example.com"]
    assert message.parsed()["Subject"] == "Herald test message"
    [event] = events(session, "settings.channel_test_sent")
    assert event.payload["targets"] == ["it@example.com"]
    assert event.subject_key == "channel:email"


def test_email_test_refused_by_the_peer_is_shown_and_logged(app, client, session, admin,
                                                            monkeypatch, smtp_peer):
    _smtp_on(app, monkeypatch, smtp_peer)
    smtp_peer.refuse_rcpt("gone@example.com", "550 5.1.1 no such user")
    response = client.post("/ops/settings/channels/email/test",
                           data={"csrf_token": token_of(client), "target": "gone@example.com"},
                           headers={"HX-Request": "true"})
    assert "Test not sent:" in response.get_data(as_text=True)
    assert "550" in response.get_data(as_text=True)
    [event] = events(session, "settings.channel_test_failed")
    assert event.payload["target"] == "gone@example.com"


def test_a_channel_that_is_off_says_which_variable_to_set(client, session, admin):
    response = client.post("/ops/settings/channels/email/test",
                           data={"csrf_token": token_of(client), "target": "it@example.com"},
                           headers={"HX-Request": "true"})
    assert "Email is not set up: set MAIL_FROM" in response.get_data(as_text=True)
    assert events(session, "settings.channel_test_failed")


def test_web_push_test_to_a_pasted_subscription(app, client, session, admin, monkeypatch,
                                                push_service: PushService):
    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(
        app.config["HERALD"], vapid_subject="mailto:ops@herald.test", web_push_allow_http=True))
    subscription = push_service.subscription()
    response = client.post("/ops/settings/channels/web_push/test", data={
        "csrf_token": token_of(client), "target": json.dumps(subscription)},
        headers={"HX-Request": "true"})
    assert "Test sent to 127.0.0.1" in response.get_data(as_text=True)
    [push] = push_service.received
    assert push.json()["title"] == "Herald test message"
    [event] = events(session, "settings.channel_test_sent")
    assert subscription["keys"]["auth"] not in json.dumps(event.payload)
    no_own = client.post("/ops/settings/channels/web_push/test",
                         data={"csrf_token": token_of(client), "target": ""},
                         headers={"HX-Request": "true"})
    assert "You have no push subscription" in no_own.get_data(as_text=True)


def test_fcm_test_reaches_the_fcm_peer(app, client, session, admin, monkeypatch, tmp_path,
                                       fcm_server):
    key = tmp_path / "sa.json"
    key.write_text(json.dumps(fcm_server.service_account_info()))
    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(
        app.config["HERALD"], fcm_service_account_file=key, fcm_api_url=fcm_server.url))
    page = client.get(PAGE).get_data(as_text=True)
    assert "PRIVATE KEY" not in page and str(key) not in page  # the key file is a secret
    response = client.post("/ops/settings/channels/fcm/test", data={
        "csrf_token": token_of(client), "target": "device-token-123456"},
        headers={"HX-Request": "true"})
    assert "Test sent to" in response.get_data(as_text=True), response.get_data(as_text=True)
    [received] = fcm_server.received
    assert received.message["token"] == "device-token-123456"
    [event] = events(session, "settings.channel_test_sent")
    assert "device-token-123456" not in json.dumps(event.payload)


def test_peppol_test_goes_to_the_outbox_test_folder_as_valid_ubl(app, client, session, admin,
                                                                  monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "HERALD", dataclasses.replace(
        app.config["HERALD"], peppol_outbox=tmp_path / "outbox"))
    response = client.post("/ops/settings/channels/peppol/test", data={
        "csrf_token": token_of(client), "target": ""}, headers={"HX-Request": "true"})
    assert "Test sent to 0208:0123456749" in response.get_data(as_text=True)
    assert not list((tmp_path / "outbox").glob("*.xml"))  # never the live pickup folder
    [document] = (tmp_path / "outbox" / "test").glob("*.xml")
    import einvoice
    parsed = einvoice.read_ubl(document.read_bytes())
    assert parsed.buyer.endpoint_id == "0123456749"
    assert parsed.number.startswith("TEST-")
    refused = client.post("/ops/settings/channels/peppol/test", data={
        "csrf_token": token_of(client), "target": "0208:123"}, headers={"HX-Request": "true"})
    assert "Test not sent:" in refused.get_data(as_text=True)


def test_first_seller_can_be_set_up_from_the_page(client, session):
    user = make_admin(session)
    sign_in_admin(client, user)
    assert session.scalar(sa.select(sa.func.count(Organisation.id))) == 0
    page = client.get(PAGE).get_data(as_text=True)
    assert "No seller is set up yet" in page
    response = client.post("/ops/settings/seller", data={**SELLER,
                                                         "csrf_token": token_of(client)})
    assert response.status_code == 302
    session.expire_all()
    [org] = session.scalars(sa.select(Organisation)).all()
    assert (org.legal_name, org.peppol_endpoint_scheme, org.peppol_endpoint_id) == (
        "Testing Telecom NV", "0208", "0123456749")
    assert events(session, "settings.seller_created")


def test_new_runs_start_from_the_stored_window_and_holidays(app, client, session, admin):
    client.post("/ops/settings/sending", data={
        "csrf_token": token_of(client), "window_start_hour": "7", "window_end_hour": "19",
        "holidays": "2026-12-25", "window_time_zone": "Europe/Brussels", "max_attempts": "8",
        "first_backoff_seconds": "30", "max_backoff_seconds": "7200"})
    form = client.get("/ops/runs/new").get_data(as_text=True)
    assert re.search(r'id="window_start_hour"[^>]*value="7"', form)
    assert re.search(r'id="window_end_hour"[^>]*value="19"', form)
    assert "2026-12-25</textarea>" in form
    assert 'value="Europe/Brussels"' in form


def test_workers_build_their_retry_policy_from_the_stored_one(app, session):
    from portal.db import get_database
    from portal.models.delivery_defaults import DeliveryDefaults
    from portal.sending_defaults import stored_sending_policy

    lease = timedelta(seconds=90)
    assert stored_sending_policy(get_database(app).sessionmaker, lease).max_attempts == 8
    session.add(DeliveryDefaults(id=1, window_start_hour=8, window_end_hour=20, weekends=False,
                                 holidays=[], max_attempts=2, first_backoff_seconds=5,
                                 max_backoff_seconds=50))
    session.flush()
    policy = stored_sending_policy(get_database(app).sessionmaker, lease)
    assert (policy.max_attempts, policy.first_backoff, policy.send_lease) == (
        2, timedelta(seconds=5), lease)
