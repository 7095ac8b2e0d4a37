"""signature requests and evidence

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

Requests to sign or acknowledge a document, their signers in order (with the
SHA-256 of each signer's link token) and the signatures with their evidence.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import distribution.sqltypes

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _status(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table('signature_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('document_sha256', sa.String(length=64), nullable=False),
    sa.Column('mode', _status('signingmode', 'sign', 'acknowledge'), nullable=False),
    sa.Column('consent_text', sa.Text(), nullable=False),
    sa.Column('status', _status('requeststatus', 'pending', 'completed', 'declined', 'expired'), nullable=False),
    sa.Column('signed_sha256', sa.String(length=64), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_signature_requests_customer_id_customers')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_signature_requests_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_signature_requests_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signature_requests'))
    )
    op.create_index(op.f('ix_signature_requests_customer_id'), 'signature_requests', ['customer_id'], unique=False)
    op.create_index(op.f('ix_signature_requests_invoice_id'), 'signature_requests', ['invoice_id'], unique=False)
    op.create_index(op.f('ix_signature_requests_status'), 'signature_requests', ['status'], unique=False)
    op.create_table('signature_signers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('status', _status('signerstatus', 'waiting', 'asked', 'signed', 'declined', 'expired', 'skipped'), nullable=False),
    sa.Column('token_salt', sa.String(length=64), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=True),
    sa.Column('asked_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_reminded_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('reminders_sent', sa.Integer(), nullable=False),
    sa.Column('viewed_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('finished_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('decline_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['signature_requests.id'], name=op.f('fk_signature_signers_request_id_signature_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signature_signers')),
    sa.UniqueConstraint('request_id', 'position', name=op.f('uq_signature_signers_request_id_position')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_signature_signers_token_sha256'))
    )
    op.create_index(op.f('ix_signature_signers_email'), 'signature_signers', ['email'], unique=False)
    op.create_table('signatures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('signer_id', sa.Integer(), nullable=False),
    sa.Column('signed_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('ip_address', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=500), nullable=False),
    sa.Column('document_sha256', sa.String(length=64), nullable=False),
    sa.Column('consent_text', sa.Text(), nullable=False),
    sa.Column('typed_name', sa.String(length=200), nullable=True),
    sa.Column('drawn_png', sa.LargeBinary(), nullable=True),
    sa.Column('drawn_sha256', sa.String(length=64), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('event_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['signer_id'], ['signature_signers.id'], name=op.f('fk_signatures_signer_id_signature_signers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_signatures_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signatures')),
    sa.UniqueConstraint('signer_id', name=op.f('uq_signatures_signer_id'))
    )


def downgrade() -> None:
    op.drop_table('signatures')
    op.drop_index(op.f('ix_signature_signers_email'), table_name='signature_signers')
    op.drop_table('signature_signers')
    op.drop_index(op.f('ix_signature_requests_status'), table_name='signature_requests')
    op.drop_index(op.f('ix_signature_requests_invoice_id'), table_name='signature_requests')
    op.drop_index(op.f('ix_signature_requests_customer_id'), table_name='signature_requests')
    op.drop_table('signature_requests')
