"""signature requests and evidence

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

Reserved in the chain so that parallel work lands without renumbering; an empty
revision is harmless.
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import distribution.sqltypes  # noqa: F401

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
