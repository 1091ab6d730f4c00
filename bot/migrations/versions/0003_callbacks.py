"""call-back requests: a resident asked for a person; staff of the town phone back before a deadline

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "callback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("town", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["done_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["resident_id"], ["resident.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_callback_open", "callback", ["town", "done_at", "due_at"], unique=False)
    op.create_index(op.f("ix_callback_resident_id"), "callback", ["resident_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_callback_resident_id"), table_name="callback")
    op.drop_index("ix_callback_open", table_name="callback")
    op.drop_table("callback")
