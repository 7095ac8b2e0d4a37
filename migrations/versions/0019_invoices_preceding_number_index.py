"""index invoices by the number of the invoice they correct

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-23

Open balances look up the credit notes that correct a set of invoices by
``preceding_invoice_number``; without an index that is a scan of every invoice
and credit note, on every invoice list and invoice page of the customer portal
(about 23 ms per lookup at 21,000 documents on PostgreSQL, growing with the data).
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoices_preceding_invoice_number'),
                              ['preceding_invoice_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_preceding_invoice_number'))
