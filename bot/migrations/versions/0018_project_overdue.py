"""微实事 past their due date: the mark of the sweep that reports them once, and the index it selects through

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.coltypes

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("project") as batch:
        batch.add_column(sa.Column("overdue_at", bot.coltypes.UTCDateTime(timezone=True), nullable=True))
        batch.create_index("ix_project_due", ["status", "due_date", "overdue_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("project") as batch:
        batch.drop_index("ix_project_due")
        batch.drop_column("overdue_at")
