"""message templates

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23

Operators' versioned overrides of the built-in message texts
(distribution.template_store): one row per version, never updated.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import distribution.sqltypes

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('message_template_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('part', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('note', sa.String(length=300), nullable=False),
    sa.Column('restored_from', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_template_versions')),
    sa.UniqueConstraint('kind', 'part', 'language', 'version',
                        name=op.f('uq_message_template_versions_kind_part_language_version'))
    )


def downgrade() -> None:
    op.drop_table('message_template_versions')
