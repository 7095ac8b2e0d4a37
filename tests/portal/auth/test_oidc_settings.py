"""OIDC_* variables: off by default, checked when set, the role map and the trusted amr."""

from __future__ import annotations

import pytest

from portal.config import ConfigError, Settings
from portal.models import Role
from portal.oidc_settings import oidc_from_env

BASE = {"OIDC_ISSUER": "https://login.example.com/realms/staff/",
        "OIDC_CLIENT_ID": "herald", "OIDC_CLIENT_SECRET": "s3cret"}


def test_off_unless_an_issuer_is_set(tmp_path):
    assert Settings.from_env(tmp_path, {}).oidc is None


def test_a_full_configuration_is_read(tmp_path):
    settings = Settings.from_env(tmp_path, {
        **BASE, "OIDC_PROVIDER_NAME": "Example SSO", "OIDC_ROLE_CLAIM": "realm_access.roles",
        "OIDC_ROLE_MAP": "herald-admin=admin, billing = billing_operator",
        "OIDC_AUTO_PROVISION": "true", "OIDC_MFA_AMR": "mfa,hwk"}).oidc
    assert settings.issuer == "https://login.example.com/realms/staff"
    assert settings.provider_name == "Example SSO" and settings.auto_provision
    assert settings.role_map == (("herald-admin", Role.ADMIN), ("billing", Role.BILLING_OPERATOR))
    assert settings.mfa_amr == {"mfa", "hwk"}
    assert "s3cret" not in repr(settings)
    assert settings.role_for({"realm_access": {"roles": ["x", "billing"]}}) is \
        Role.BILLING_OPERATOR
    assert settings.role_for({"realm_access": {"roles": ["billing", "herald-admin"]}}) is \
        Role.ADMIN  # the map's order decides, not the claim's
    assert settings.role_for({"realm_access": "herald-admin"}) is None
    assert settings.asserts_mfa({"amr": ["pwd", "hwk"]})
    assert not settings.asserts_mfa({"amr": "mfa"}) and not settings.asserts_mfa({})


def test_defaults(tmp_path):
    settings = oidc_from_env(BASE)
    assert settings.provider_name == "login.example.com"
    assert settings.scopes == "openid email profile" and not settings.auto_provision
    assert settings.mfa_amr == {"mfa"}
    assert oidc_from_env({**BASE, "OIDC_MFA_AMR": ""}).mfa_amr == frozenset()


@pytest.mark.parametrize(("changes", "named"), [
    ({"OIDC_ISSUER": "http://login.example.com"}, "OIDC_ISSUER"),
    ({"OIDC_CLIENT_SECRET": ""}, "OIDC_CLIENT_SECRET"),
    ({"OIDC_ROLE_CLAIM": "groups", "OIDC_ROLE_MAP": "admins=superuser"}, "OIDC_ROLE_MAP"),
    ({"OIDC_ROLE_CLAIM": "groups", "OIDC_ROLE_MAP": "admins=customer"}, "OIDC_ROLE_MAP"),
    ({"OIDC_ROLE_MAP": "admins=admin"}, "OIDC_ROLE_CLAIM"),
    ({"OIDC_AUTO_PROVISION": "true"}, "OIDC_ROLE_MAP"),
    ({"OIDC_AUTO_PROVISION": "maybe"}, "OIDC_AUTO_PROVISION"),
])
def test_malformed_settings_name_the_variable(tmp_path, changes, named):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(tmp_path, {**BASE, **changes})


def test_plain_http_is_allowed_on_loopback_only():
    assert oidc_from_env({**BASE, "OIDC_ISSUER": "http://127.0.0.1:8080"}).issuer == \
        "http://127.0.0.1:8080"
