"""einvoice and distribution changes

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23

Reserved in the chain so that parallel work lands without renumbering; an empty
revision is harmless.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import distribution.sqltypes  # noqa: F401

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A customer who wants the PDF inside their e-invoice (cac:AdditionalDocumentReference).
    with op.batch_alter_table('customers') as batch_op:
        batch_op.add_column(sa.Column('embed_pdf_in_ubl', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('customers') as batch_op:
        batch_op.drop_column('embed_pdf_in_ubl')
