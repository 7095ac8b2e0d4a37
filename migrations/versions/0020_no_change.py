"""no schema change: reserved for planning's existing-message check, which needed none

Kept so that a database already stamped 0020 stays on a known revision.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-23
"""

from collections.abc import Sequence

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
