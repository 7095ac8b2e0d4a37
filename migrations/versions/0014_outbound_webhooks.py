"""outbound webhooks: endpoints, deliveries derived from the event log, attempts, the cursor

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23

The cursor row starts at the newest event: no endpoint exists yet, so the history
before this migration has no one to go to.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import distribution.sqltypes

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    cursor = op.create_table('webhook_cursor',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_event_id', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_webhook_cursor_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_cursor'))
    )
    op.create_table('webhook_endpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('event_types', sa.JSON(), nullable=False),
    sa.Column('format', sa.Enum('herald', 'slack', name='webhookformat', native_enum=False,
                                create_constraint=True, length=16), nullable=False),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('after_event_id', sa.BigInteger(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('state', sa.Enum('pending', 'sending', 'succeeded', 'failed', 'cancelled',
                               name='webhookdeliverystate', native_enum=False,
                               create_constraint=True, length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('lease_until', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('series_started_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('completed_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('replayed_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'],
                            name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('endpoint_id', 'event_id',
                        name=op.f('uq_webhook_deliveries_endpoint_id_event_id'))
    )
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries',
                    ['state', 'next_attempt_at'], unique=False)
    op.create_index(op.f('ix_webhook_deliveries_endpoint_id'), 'webhook_deliveries',
                    ['endpoint_id'], unique=False)
    op.create_table('webhook_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('replay', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'],
                            name=op.f('fk_webhook_attempts_delivery_id_webhook_deliveries'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts'))
    )
    op.create_index(op.f('ix_webhook_attempts_delivery_id'), 'webhook_attempts',
                    ['delivery_id'], unique=False)
    newest = op.get_bind().scalar(sa.text("SELECT max(id) FROM events")) or 0
    op.bulk_insert(cursor, [{"id": 1, "last_event_id": newest,
                             "updated_at": distribution.sqltypes.utcnow()}])


def downgrade() -> None:
    op.drop_index(op.f('ix_webhook_attempts_delivery_id'), table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
    op.drop_index(op.f('ix_webhook_deliveries_endpoint_id'), table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_due', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
    op.drop_table('webhook_endpoints')
    op.drop_table('webhook_cursor')
