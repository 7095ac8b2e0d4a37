"""customer channel settings (verified emails, push subscriptions)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23

Email addresses customers add in the portal: pending until the emailed link is
followed, and remembered when removed so a contacts sync does not revive them.
Push subscriptions, app devices and Peppol IDs live in distribution's addresses.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import distribution.sqltypes

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('customer_email_addresses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=True),
    sa.Column('token_expires_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('verification_sent_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('verified_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('removed_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_customer_email_addresses_customer_id_customers'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_email_addresses')),
    sa.UniqueConstraint('customer_id', 'email',
                        name=op.f('uq_customer_email_addresses_customer_id_email')),
    sa.UniqueConstraint('token_sha256',
                        name=op.f('uq_customer_email_addresses_token_sha256'))
    )
    with op.batch_alter_table('customer_email_addresses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_email_addresses_customer_id'),
                              ['customer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('customer_email_addresses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_email_addresses_customer_id'))
    op.drop_table('customer_email_addresses')
