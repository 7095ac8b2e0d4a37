"""delivery defaults: the send window, holidays and retry policy edited on the settings page

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-23

One row (id 1); a missing row means Herald's built-in defaults.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import distribution.sqltypes

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('delivery_defaults',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('window_start_hour', sa.Integer(), nullable=False),
    sa.Column('window_end_hour', sa.Integer(), nullable=False),
    sa.Column('weekends', sa.Boolean(), nullable=False),
    sa.Column('holidays', sa.JSON(), nullable=False),
    sa.Column('window_time_zone', sa.String(length=64), nullable=True),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('first_backoff_seconds', sa.Integer(), nullable=False),
    sa.Column('max_backoff_seconds', sa.Integer(), nullable=False),
    sa.Column('updated_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=True),
    sa.CheckConstraint('id = 1', name=op.f('ck_delivery_defaults_single_row')),
    sa.CheckConstraint('window_start_hour >= 0 AND window_start_hour < window_end_hour '
                       'AND window_end_hour <= 24',
                       name=op.f('ck_delivery_defaults_window_hours')),
    sa.CheckConstraint('max_attempts >= 1',
                       name=op.f('ck_delivery_defaults_max_attempts_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_defaults'))
    )


def downgrade() -> None:
    op.drop_table('delivery_defaults')
