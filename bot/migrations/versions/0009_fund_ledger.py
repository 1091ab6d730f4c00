"""help given directly: a fund account per town and source (town budget, 慈善会) and its ledger

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fundaccount",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("town", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("balance_fen", sa.Integer(), nullable=False),
        sa.Column("updated_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("town", "source"),
    )
    op.create_table(
        "fundentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("town", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("balance_after_fen", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["approved_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_fundentry_case_id"), "fundentry", ["case_id"], unique=False)
    op.create_index("ix_fundentry_town_at", "fundentry", ["town", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_fundentry_town_at", table_name="fundentry")
    op.drop_index(op.f("ix_fundentry_case_id"), table_name="fundentry")
    op.drop_table("fundentry")
    op.drop_table("fundaccount")
