"""data lifecycle: legal holds

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23

A legal hold on one customer or one invoice suspends purge and erasure.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import distribution.sqltypes

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('legal_holds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('placed_by', sa.String(length=200), nullable=False),
    sa.Column('placed_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('released_by', sa.String(length=200), nullable=True),
    sa.Column('released_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.CheckConstraint('(customer_id IS NULL) != (invoice_id IS NULL)',
                       name=op.f('ck_legal_holds_one_subject')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_legal_holds_customer_id_customers')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'],
                            name=op.f('fk_legal_holds_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_holds'))
    )
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_holds_customer_id'), ['customer_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_legal_holds_invoice_id'), ['invoice_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_holds_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_legal_holds_customer_id'))
    op.drop_table('legal_holds')
