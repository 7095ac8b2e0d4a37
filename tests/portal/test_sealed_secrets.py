"""Secrets Herald must read back (TOTP seeds, webhook signing keys, replayable API
answers) are stored sealed; `herald db upgrade` seals older values and `herald db
reseal` moves them to a new SECRET_KEY."""

from __future__ import annotations

import sqlalchemy as sa

from distribution.sealing import Keyring, is_sealed
from distribution.webhook_endpoints import register_endpoint
from distribution.webhook_models import WebhookEndpoint
from portal import create_app
from portal.db import get_database
from portal.migrate import upgrade
from portal.models.users import User
from tests.factories import make_user

TOTP_SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _stored(session, table: str, column: str, row_id: int) -> str:
    return session.execute(sa.text(f"SELECT {column} FROM {table} WHERE id = :id"),
                           {"id": row_id}).scalar_one()


def test_totp_seeds_and_webhook_keys_are_stored_sealed(app, session):
    user = make_user(session, email="sealed@example.com")
    user.totp_secret = TOTP_SEED
    endpoint = register_endpoint(session, "https://hooks.example.com/herald", ["payment.succeeded"],
                                 actor="test")
    plain_key = endpoint.secret
    session.flush()

    assert is_sealed(_stored(session, "users", "totp_secret", user.id))
    assert TOTP_SEED not in _stored(session, "users", "totp_secret", user.id)
    assert is_sealed(_stored(session, "webhook_endpoints", "secret", endpoint.id))
    session.expire_all()
    assert session.get(User, user.id).totp_secret == TOTP_SEED
    assert session.get(WebhookEndpoint, endpoint.id).secret == plain_key


def _app(url: str, folder, secret_key: str, fallbacks: str = ""):
    return create_app({"DATABASE_URL": url, "HERALD_INSTANCE_PATH": str(folder),
                       "SECRET_KEY": secret_key, "SECRET_KEY_FALLBACKS": fallbacks})


def test_upgrade_seals_older_values_and_reseal_follows_a_new_secret_key(databases, tmp_path):
    url = databases.new_url()
    old = _app(url, tmp_path, "the old secret key")
    engine = get_database(old).engine
    upgrade(engine)
    with get_database(old).session_scope() as session:
        user = make_user(session, email="rotate@example.com")
        endpoint = register_endpoint(session, "https://hooks.example.com/h", ["payment.succeeded"],
                                     actor="test")
        session.flush()
        user_id, endpoint_id, webhook_key = user.id, endpoint.id, endpoint.secret
    with engine.begin() as connection:  # as stored before sealing existed
        connection.execute(sa.text("UPDATE users SET totp_secret = :s WHERE id = :id"),
                           {"s": TOTP_SEED, "id": user_id})

    result = old.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "Sealed 1 stored value(s) of users.totp_secret" in result.output
    with engine.connect() as connection:
        stored_seed = connection.execute(sa.text(
            "SELECT totp_secret FROM users WHERE id = :id"), {"id": user_id}).scalar_one()
    assert Keyring(["the old secret key"]).open(stored_seed, "totp") == TOTP_SEED

    new = _app(url, tmp_path, "the new secret key", fallbacks="the old secret key")
    result = new.test_cli_runner().invoke(args=["db", "reseal"])
    assert result.exit_code == 0, result.output
    assert "Sealed 1 stored value(s) of users.totp_secret" in result.output
    assert "Sealed 1 stored value(s) of webhook_endpoints.secret" in result.output
    only_new = Keyring(["the new secret key"])  # the old key is no longer needed
    with engine.connect() as connection:
        seed, key = connection.execute(sa.text(
            "SELECT u.totp_secret, w.secret FROM users u, webhook_endpoints w "
            "WHERE u.id = :u AND w.id = :w"), {"u": user_id, "w": endpoint_id}).one()
    assert only_new.open(seed, "totp") == TOTP_SEED
    assert only_new.open(key, "webhook") == webhook_key
    again = new.test_cli_runner().invoke(args=["db", "reseal"])
    assert "Every stored secret is sealed under the current key." in again.output
    engine.dispose()
