"""room for sealed secrets: TOTP seeds and webhook signing keys are stored encrypted

A sealed value (distribution.sealing) is longer than the plain one. Values already
stored stay readable as they are; ``herald db upgrade`` seals them after migrating.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("totp_secret", type_=sa.String(255),
                           existing_type=sa.String(64), existing_nullable=True)
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", type_=sa.String(255),
                           existing_type=sa.String(100), existing_nullable=False)


def downgrade() -> None:
    # Sealed values do not fit the old widths: on PostgreSQL this fails while any is
    # stored (open them first), rather than cutting them.
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", type_=sa.String(100),
                           existing_type=sa.String(255), existing_nullable=False)
    with op.batch_alter_table("users") as batch:
        batch.alter_column("totp_secret", type_=sa.String(64),
                           existing_type=sa.String(255), existing_nullable=True)
