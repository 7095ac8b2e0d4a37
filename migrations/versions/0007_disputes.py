"""disputes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

Disputes about invoices (or some of their lines), and the message thread of each.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import distribution.sqltypes

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str, length: int = 32) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


INVOICE_STATUS = ('draft', 'issued', 'partially_paid', 'paid', 'void', 'disputed')


def upgrade() -> None:
    op.create_table('disputes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('status', _enum('disputestatus', 'open', 'under_review', 'resolved', 'withdrawn'),
              nullable=False),
    sa.Column('reason', _enum('disputereason', 'wrong_amount', 'not_received', 'not_ordered',
                              'duplicate', 'already_paid', 'quality', 'other'), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('amount', distribution.sqltypes.ExactDecimal(18, 2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('resolution', _enum('disputeresolution', 'accepted', 'rejected'), nullable=True),
    sa.Column('resolution_text', sa.Text(), nullable=True),
    sa.Column('invoice_status_before', _enum('invoicestatus', *INVOICE_STATUS), nullable=False),
    sa.Column('opened_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('closed_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.CheckConstraint('amount IS NULL OR amount > 0', name=op.f('ck_disputes_amount_positive')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_disputes_customer_id_customers')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_disputes_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['opened_by_user_id'], ['users.id'], name=op.f('fk_disputes_opened_by_user_id_users')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_disputes_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes'))
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index('ix_disputes_customer_created', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_disputes_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_disputes_status'), ['status'], unique=False)

    op.create_table('dispute_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dispute_id', sa.Integer(), nullable=False),
    sa.Column('invoice_line_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['dispute_id'], ['disputes.id'], name=op.f('fk_dispute_lines_dispute_id_disputes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invoice_line_id'], ['invoice_lines.id'], name=op.f('fk_dispute_lines_invoice_line_id_invoice_lines')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispute_lines')),
    sa.UniqueConstraint('dispute_id', 'invoice_line_id', name=op.f('uq_dispute_lines_dispute_id_invoice_line_id'))
    )
    op.create_table('dispute_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dispute_id', sa.Integer(), nullable=False),
    sa.Column('author', _enum('messageauthor', 'customer', 'staff', length=16), nullable=False),
    sa.Column('author_user_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_user_id'], ['users.id'], name=op.f('fk_dispute_messages_author_user_id_users')),
    sa.ForeignKeyConstraint(['dispute_id'], ['disputes.id'], name=op.f('fk_dispute_messages_dispute_id_disputes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispute_messages'))
    )
    with op.batch_alter_table('dispute_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dispute_messages_dispute_id'), ['dispute_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dispute_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dispute_messages_dispute_id'))
    op.drop_table('dispute_messages')
    op.drop_table('dispute_lines')
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disputes_status'))
        batch_op.drop_index(batch_op.f('ix_disputes_invoice_id'))
        batch_op.drop_index('ix_disputes_customer_created')
    op.drop_table('disputes')
