"""One call queue (回电 and 回访): reminder and escalation marks on both tables, and the index the deadline sweep
walks (open rows by deadline)

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.models

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("callback", "calltask"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("reminded_at", bot.models.UTCDateTime(timezone=True), nullable=True))
            batch.add_column(sa.Column("escalated_at", bot.models.UTCDateTime(timezone=True), nullable=True))
        op.create_index(f"ix_{table}_due", table, ["done_at", "due_at"], unique=False)


def downgrade() -> None:
    for table in ("calltask", "callback"):
        op.drop_index(f"ix_{table}_due", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("escalated_at")
            batch.drop_column("reminded_at")
