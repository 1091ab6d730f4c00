"""权责清单: the starter list (responsible unit and time limit per kind and category)

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import bot.coltypes
from bot.cases.duty import STARTER

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

table = sa.table(
    "responsibility",
    sa.column("kind", sa.String),
    sa.column("category", sa.String),
    sa.column("unit", sa.String),
    sa.column("days", sa.Integer),
    sa.column("updated_at", bot.coltypes.UTCDateTime(timezone=True)),
)


def upgrade() -> None:
    now = datetime.now(UTC)
    op.bulk_insert(
        table,
        [{"kind": str(k), "category": c, "unit": u, "days": d, "updated_at": now} for k, c, u, d in STARTER],
    )


def downgrade() -> None:
    op.execute(table.delete())
