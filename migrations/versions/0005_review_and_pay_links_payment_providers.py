"""review and pay links, payment providers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

"Review & pay" links (only the token's SHA-256 is stored), the recovery page's
requests (for its rate limit), and the payment providers' webhook events already
handled (so a replayed event records nothing twice).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import distribution.sqltypes

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('pay_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('expires_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('revoked_reason', sa.String(length=200), nullable=True),
    sa.Column('last_opened_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_pay_links_invoice_id_invoices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pay_links')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_pay_links_token_sha256'))
    )
    with op.batch_alter_table('pay_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pay_links_invoice_id'), ['invoice_id'], unique=False)

    op.create_table('pay_link_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('client_sha256', sa.String(length=64), nullable=False),
    sa.Column('matched', sa.Boolean(), nullable=False),
    sa.Column('created_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_pay_link_requests_invoice_id_invoices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pay_link_requests'))
    )
    with op.batch_alter_table('pay_link_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pay_link_requests_client_sha256'), ['client_sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_pay_link_requests_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pay_link_requests_invoice_id'), ['invoice_id'], unique=False)

    op.create_table('processed_provider_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.Column('received_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_processed_provider_events')),
    sa.UniqueConstraint('provider', 'event_id', name=op.f('uq_processed_provider_events_provider_event_id'))
    )


def downgrade() -> None:
    op.drop_table('processed_provider_events')
    with op.batch_alter_table('pay_link_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pay_link_requests_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_pay_link_requests_created_at'))
        batch_op.drop_index(batch_op.f('ix_pay_link_requests_client_sha256'))

    op.drop_table('pay_link_requests')
    with op.batch_alter_table('pay_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pay_links_invoice_id'))

    op.drop_table('pay_links')
