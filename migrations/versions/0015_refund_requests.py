"""refund and credit requests

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23

A refund or credit asked for on an invoice (amount, masked reason, the caller's
context), approved at once under the configured limit or decided by finance.
Contacts added through the API need no new column: who and why are in the event log.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import distribution.sqltypes

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('refund_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('refund', 'credit', name='refundkind', native_enum=False,
                              create_constraint=True, length=16), nullable=False),
    sa.Column('status', sa.Enum('pending', 'approved', 'rejected', name='refundstatus',
                                native_enum=False, create_constraint=True, length=16),
              nullable=False),
    sa.Column('amount', distribution.sqltypes.ExactDecimal(18, 2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=False),
    sa.Column('auto_approved', sa.Boolean(), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', distribution.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=True),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('created_at', distribution.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_refund_requests_amount_positive')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_refund_requests_customer_id_customers')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'],
                            name=op.f('fk_refund_requests_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'],
                            name=op.f('fk_refund_requests_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'],
                            name=op.f('fk_refund_requests_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_requests'))
    )
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_requests_customer_id'), ['customer_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_refund_requests_invoice_id'), ['invoice_id'],
                              unique=False)
        batch_op.create_index('ix_refund_requests_status_created', ['status', 'created_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_refund_requests_status_created')
        batch_op.drop_index(batch_op.f('ix_refund_requests_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_refund_requests_customer_id'))
    op.drop_table('refund_requests')
