"""督办: the city presses a case, with its own deadline, escalation and the town's answer

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "supervision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("town", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("request", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("pressed_by_id", sa.Integer(), nullable=True),
        sa.Column("due_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("escalated_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answer", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("answered_by_id", sa.Integer(), nullable=True),
        sa.Column("answered_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["pressed_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["answered_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_supervision_case_id"), "supervision", ["case_id"], unique=False)
    op.create_index(
        "ix_supervision_due", "supervision", ["answered_at", "escalated_at", "due_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_supervision_due", table_name="supervision")
    op.drop_index(op.f("ix_supervision_case_id"), table_name="supervision")
    op.drop_table("supervision")
