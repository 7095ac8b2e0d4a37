"""Data lifecycle: retention, legal holds, purge, GDPR export and erasure."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState, Message
from distribution.documents import DatabaseStore, DocumentFormat, FolderStore, StoredDocument
from distribution.events import Event, events_for, verify_chain
from distribution.recipients import Recipient, add_address
from distribution.runs import WaveOptions
from distribution.sqltypes import utcnow
from portal.config import ConfigError, Settings
from portal.lifecycle.gdpr import ERASED, ErasureRefused, erase_customer, export_customer
from portal.lifecycle.holds import HoldError, place_hold, release_hold
from portal.lifecycle.retention import RetentionPolicy, purge, remove_files
from portal.models import Contact, Customer, Invoice, User
from portal.models.sign_in import SignInAttempt
from portal.recipients_sync import sync_customer
from portal.runs import RunSelection, create_document_run
from tests.factories import make_user
from tests.portal.pay_helpers import bill

AFTER_RETENTION = date(2034, 1, 2)  # issued 2026-10-01: kept to 2033-12-31


def invoice_ids(session) -> set[int]:
    return set(session.scalars(sa.select(Invoice.id)))


def test_policy_takes_the_longest_country_period():
    policy = RetentionPolicy(years=7, years_by_country={"DE": 10})
    assert policy.kept_until(date(2026, 10, 1), "BE", "BE") == date(2033, 12, 31)
    assert policy.kept_until(date(2026, 10, 1), "BE", "de") == date(2036, 12, 31)


def test_retention_by_country_setting(tmp_path: Path):
    settings = Settings.from_env(tmp_path, {"RETENTION_YEARS_BY_COUNTRY": "be=7, DE=10"})
    assert settings.retention_years_by_country == (("BE", 7), ("DE", 10))
    with pytest.raises(ConfigError, match=r"RETENTION_YEARS_BY_COUNTRY.*COUNTRY=YEARS"):
        Settings.from_env(tmp_path, {"RETENTION_YEARS_BY_COUNTRY": "Belgium=7"})


def test_purge_keeps_what_is_in_retention(session):
    billed = bill(session)
    report = purge(session, RetentionPolicy(), today=date(2033, 12, 31))
    assert "invoices" not in report.removed
    assert {billed.inv1.id, billed.inv2.id} <= invoice_ids(session)


def test_purge_removes_expired_invoices_and_documents_but_not_held(session):
    billed = bill(session)
    alice_ubl, bob_ubl = billed.inv1.ubl_sha256, billed.inv2.ubl_sha256
    assert alice_ubl and bob_ubl
    hold = place_hold(session, customer=billed.alice, reason="court case 12/2033", actor="legal")

    report = purge(session, RetentionPolicy(), today=AFTER_RETENTION)

    assert report.removed["invoices"] == 1
    assert report.kept_on_hold == 1
    remaining = invoice_ids(session)
    assert billed.inv1.id in remaining and billed.inv2.id not in remaining
    assert session.get(StoredDocument, alice_ubl) is not None
    session.expire_all()
    assert session.get(StoredDocument, bob_ubl) is None
    assert report.removed["documents"] >= 1
    purged = events_for(session, "lifecycle", "purge")[-1]
    assert purged.payload["removed"]["invoices"] == 1
    assert events_for(session, "customer", str(billed.alice.id))[-1].kind == "legal_hold.placed"

    release_hold(session, hold.id, actor="legal")
    assert purge(session, RetentionPolicy(), today=AFTER_RETENTION).removed["invoices"] == 1
    assert billed.inv1.id not in invoice_ids(session)
    assert verify_chain(session) is None  # the log is evidence: purge never touches it


def test_invoice_hold_and_country_period_keep_invoices(session):
    billed = bill(session)
    place_hold(session, invoice=billed.inv2, reason="tax audit 2034-17", actor="legal")
    report = purge(session, RetentionPolicy(years_by_country={"BE": 10}), today=AFTER_RETENTION)
    assert "invoices" not in report.removed  # Belgian seller: ten years here
    report = purge(session, RetentionPolicy(), today=AFTER_RETENTION)
    assert report.removed["invoices"] == 1
    assert invoice_ids(session) >= {billed.inv2.id}
    assert billed.inv1.id not in invoice_ids(session)


def test_hold_needs_a_reason_and_one_subject(session):
    billed = bill(session)
    with pytest.raises(HoldError, match="--reason"):
        place_hold(session, customer=billed.alice, reason=" ", actor="legal")
    with pytest.raises(HoldError, match="either"):
        place_hold(session, customer=billed.alice, invoice=billed.inv1, reason="x", actor="l")


def test_dry_run_reports_and_removes_nothing(session):
    billed = bill(session)
    events_before = session.scalar(sa.select(sa.func.count()).select_from(Event))
    report = purge(session, RetentionPolicy(), today=AFTER_RETENTION, dry_run=True)
    assert report.removed["invoices"] == 2
    assert report.removed["documents"] >= 2
    assert {billed.inv1.id, billed.inv2.id} <= invoice_ids(session)
    assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == events_before


def test_operational_logs_go_after_their_days(session):
    old = SignInAttempt(at=utcnow() - timedelta(days=91), action="password",
                        ip_address="192.0.2.1")
    recent = SignInAttempt(at=utcnow() - timedelta(days=1), action="password",
                           ip_address="192.0.2.1")
    session.add_all([old, recent])
    session.flush()
    report = purge(session, RetentionPolicy(operational_log_days=90))
    assert report.removed["sign_in_attempts"] >= 1
    ids = set(session.scalars(sa.select(SignInAttempt.id)))
    assert recent.id in ids and old.id not in ids


def test_export_holds_the_customers_data_and_documents(session):
    billed = bill(session)
    store = DatabaseStore()
    data = export_customer(session, billed.alice, store, actor="cli:dpo")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        exported = json.loads(archive.read("customer.json"))
        assert archive.read("documents/INV-1.xml") == store.get(session, billed.inv1.ubl_sha256)
        assert "documents/INV-2.xml" not in archive.namelist()  # Bob's
    assert exported["customer"]["name"] == "Alice"
    assert [c["email"] for c in exported["contacts"]] == ["c1@example.com"]
    assert [i["number"] for i in exported["invoices"]] == ["INV-1"]
    assert exported["invoices"][0]["lines"]
    assert events_for(session, "customer", str(billed.alice.id))[-1].kind == "customer.exported"


def test_erase_removes_personal_data_and_keeps_the_fiscal_record(session):
    billed = bill(session)
    user = make_user(session, email="alice@example.com", customer=billed.alice)
    recipient = sync_customer(session, billed.alice, actor="test")
    push = add_address(session, recipient, ChannelName.WEB_PUSH,
                       '{"endpoint": "https://push.example/alice-device"}', actor="test")
    ubl_before = DatabaseStore().get(session, billed.inv1.ubl_sha256)

    counts = erase_customer(session, billed.alice, reason="GDPR art. 17, 2034-01-02",
                            actor="cli:dpo")

    session.expire_all()
    alice = session.get(Customer, billed.alice.id)
    assert alice.name == ERASED and alice.address_line1 is None and alice.city is None
    assert session.scalars(sa.select(Contact).where(Contact.customer_id == alice.id)).all() == []
    erased_user = session.get(User, user.id)
    assert erased_user.email != "alice@example.com" and not erased_user.active
    assert erased_user.password_hash is None
    assert counts["contacts"] == 1 and counts["users"] == 1
    session.refresh(push)
    assert push.value == ERASED and push.dead_since is not None
    assert all(a.value == ERASED for a in session.get(Recipient, recipient.id).addresses)
    # The fiscal record stays: the invoice and its stored UBL, unchanged.
    invoice = session.get(Invoice, billed.inv1.id)
    assert invoice is not None
    assert DatabaseStore().get(session, invoice.ubl_sha256) == ubl_before
    event = events_for(session, "customer", str(alice.id))[-1]
    assert event.kind == "customer.erased"
    assert "alice@example.com" not in json.dumps(event.payload)
    assert "c1@example.com" not in json.dumps(event.payload)
    # Bob is untouched.
    assert session.get(Customer, billed.bob.id).name == "Bob"


def test_erase_refused_under_hold_or_without_reason(session):
    billed = bill(session)
    with pytest.raises(ErasureRefused, match="--reason"):
        erase_customer(session, billed.alice, reason="", actor="cli:dpo")
    place_hold(session, invoice=billed.inv1, reason="dispute in court", actor="legal")
    with pytest.raises(ErasureRefused, match="legal hold"):
        erase_customer(session, billed.alice, reason="GDPR", actor="cli:dpo")
    assert session.get(Customer, billed.alice.id).name == "Alice"


def test_cli_purge_export_erase_and_holds(session, runner, tmp_path):
    billed = bill(session)
    result = runner.invoke(args=["lifecycle", "purge", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would remove" in result.output or "Nothing to purge" in result.output
    assert not [line for line in result.output.splitlines()  # issued this year: kept
                if line.startswith("would remove") and "invoices" in line]

    out = tmp_path / "alice.zip"
    result = runner.invoke(args=["lifecycle", "export", "C1", "--out", str(out), "--by", "dpo"])
    assert result.exit_code == 0, result.output
    assert "customer.json" in zipfile.ZipFile(out).namelist()

    result = runner.invoke(args=["lifecycle", "hold", "place", "--customer", "C2",
                                 "--reason", "audit", "--by", "legal"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["lifecycle", "erase", "C2", "--reason", "GDPR"])
    assert result.exit_code != 0 and "legal hold" in result.output
    result = runner.invoke(args=["lifecycle", "hold", "list"])
    assert "audit" in result.output

    result = runner.invoke(args=["lifecycle", "erase", "C1", "--reason", "GDPR request"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    assert session.get(Customer, billed.alice.id).name == ERASED
    result = runner.invoke(args=["lifecycle", "erase", "C9", "--reason", "GDPR"])
    assert result.exit_code != 0 and "no customer numbered 'C9'" in result.output


def test_purged_documents_files_leave_a_folder_store(session, tmp_path):
    store = FolderStore(tmp_path / "documents")
    kept = store.put(session, b"<Invoice>kept</Invoice>", DocumentFormat.UBL)
    gone = store.put(session, b"<Invoice>gone</Invoice>", DocumentFormat.UBL)
    billed = bill(session)
    report = purge(session, RetentionPolicy(), today=AFTER_RETENTION)
    assert billed.inv2.ubl_sha256 in report.documents
    assert remove_files(store, {gone.sha256}) == 1
    assert store.get(session, kept.sha256) == b"<Invoice>kept</Invoice>"
    assert not list((tmp_path / "documents").rglob(gone.sha256))
    assert remove_files(DatabaseStore(), {kept.sha256}) == 0


def test_messages_about_purged_invoices_go_with_them(session):
    billed = bill(session)
    create_document_run(session, RunSelection(), WaveOptions(), name="October",
                        public_url="https://portal.example", created_by="test")
    messages = {m.subject_key: m.id for m in session.scalars(sa.select(Message))}
    alice_key = f"invoice:{billed.org.id}:INV-1"
    bob_key = f"invoice:{billed.org.id}:INV-2"
    assert {alice_key, bob_key} <= set(messages)
    session.execute(sa.update(Delivery).values(state=DeliveryState.SENT))
    place_hold(session, customer=billed.alice, reason="audit", actor="legal")

    report = purge(session, RetentionPolicy(), today=AFTER_RETENTION)

    assert report.removed["messages"] == 1 and report.removed["deliveries"] >= 1
    left = set(session.scalars(sa.select(Message.subject_key)))
    assert alice_key in left and bob_key not in left
    assert not session.scalars(sa.select(Delivery).where(
        Delivery.message_id == messages[bob_key])).all()
    session.expire_all()
    assert session.get(StoredDocument, billed.inv2.ubl_sha256) is None  # nothing refers to it
    assert session.get(StoredDocument, billed.inv1.ubl_sha256) is not None
