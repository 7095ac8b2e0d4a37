"""Seeding a small demo (``herald demo --customers 3``) works when a language has nobody."""

from __future__ import annotations

import sqlalchemy as sa

from distribution.documents import DatabaseStore
from portal.demo.seed import seed_demo
from portal.models import Customer, Role, User


def test_a_demo_too_small_for_every_language_still_seeds(session, tmp_path):
    sign_ins = seed_demo(session, tmp_path, DatabaseStore(), customers=3, months=2)
    languages = set(session.scalars(sa.select(Customer.language)))
    assert len(languages) < 3  # the case this test is about: a language nobody speaks
    customers = [s for s in sign_ins if s.role.startswith("customer")]
    assert {s.role for s in customers} == {f"customer ({lang})" for lang in languages
                                           if lang in {"en", "nl", "es"}}
    assert len(customers) == session.scalar(sa.select(sa.func.count()).select_from(User).where(
        User.role == Role.CUSTOMER))
    assert len(sign_ins) == len(customers) + 3  # administrator, operator, support agent
