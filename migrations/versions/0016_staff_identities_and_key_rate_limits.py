"""staff identity provider sign-in; a rate limit per API key

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-23

Staff may sign in through the company's OpenID Connect provider: each provider
identity (issuer, subject) is linked to one staff sign-in. API keys made in the
ops console may carry their own rate limit (none: the installation's).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import distribution.sqltypes

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('staff_identities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('issuer', sa.String(length=300), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('created_at', distribution.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', distribution.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                            name=op.f('fk_staff_identities_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_identities')),
    sa.UniqueConstraint('issuer', 'subject', name=op.f('uq_staff_identities_issuer_subject'))
    )
    with op.batch_alter_table('staff_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_identities_user_id'), ['user_id'],
                              unique=False)
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rate_limit', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('rate_limit')
    with op.batch_alter_table('staff_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_identities_user_id'))
    op.drop_table('staff_identities')
