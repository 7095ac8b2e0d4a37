"""registration links: a self-registration is confirmed from an emailed link

``account_tokens.purpose`` gains ``registration``: the link that proves a
self-registered address before it can sign in.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ('magic_link', 'password_reset', 'invitation')
AFTER = (*BEFORE, 'registration')


def _purpose(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name='tokenpurpose', native_enum=False, create_constraint=True,
                   length=32)


def _change(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    # The enum's CHECK constraint goes with its type: batch mode drops the old one and
    # creates the new one (on SQLite by copying the table).
    with op.batch_alter_table('account_tokens') as batch:
        batch.alter_column('purpose', existing_type=_purpose(old), type_=_purpose(new),
                           existing_nullable=False)


def upgrade() -> None:
    _change(BEFORE, AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM account_tokens WHERE purpose = 'registration'")
    _change(AFTER, BEFORE)
