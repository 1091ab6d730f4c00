"""The staff queue on PostgreSQL: an index on case (town, created_at), so a town's newest open cases are read
backwards from the index and the scan stops after one page (instead of a bitmap scan of the town's open cases and a
top-N sort). On SQLite the index is partial with an always-false condition, i.e. empty and never chosen: its planner
took a full (town, created_at) index for the due-soon, sort-by-deadline and case-number filters of the queue too, and
each got slower (benchmarks/README.md, staff_pages).

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_case_town_created", "case", ["town", "created_at"], sqlite_where=sa.text("0"))


def downgrade() -> None:
    op.drop_index("ix_case_town_created", table_name="case")
