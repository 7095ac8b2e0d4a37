"""bulk planning: drop unique indexes over random hashes

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23

``events.hash`` and ``deliveries.idempotency_key`` are random hex strings; their unique
indexes were never used for look-ups and, once larger than memory, made planning a
million deliveries several times slower. Uniqueness of the idempotency key follows
from the unique (message_type, subject_key) of messages and (message_id, channel) of
deliveries; the event chain is verified by walking it in id order. The reconciler's
index on (state, lease_until) becomes partial: only held or in-doubt deliveries.

Runs get ``auto_continue``: the next draft wave starts when one is done.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


HELD = "state IN ('released', 'sending', 'in_doubt')"


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch_op:
        batch_op.add_column(sa.Column('auto_continue', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
    op.drop_index('ix_deliveries_state_lease', table_name='deliveries')
    op.create_index('ix_deliveries_state_lease', 'deliveries', ['state', 'lease_until'],
                    postgresql_where=sa.text(HELD), sqlite_where=sa.text(HELD))
    with op.batch_alter_table('events') as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_events_hash'), type_='unique')
    with op.batch_alter_table('deliveries') as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_deliveries_idempotency_key'), type_='unique')


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch_op:
        batch_op.drop_column('auto_continue')
    with op.batch_alter_table('deliveries') as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_deliveries_idempotency_key'),
                                          ['idempotency_key'])
    with op.batch_alter_table('events') as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_events_hash'), ['hash'])
    op.drop_index('ix_deliveries_state_lease', table_name='deliveries')
    op.create_index('ix_deliveries_state_lease', 'deliveries', ['state', 'lease_until'])
