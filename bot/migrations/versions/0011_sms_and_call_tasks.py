"""SMS delivery on the outbox (the phone, the provider's message id, its receipt) and call tasks (回访)

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch.add_column(sa.Column("sms_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.add_column(sa.Column("receipt", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.create_index(batch.f("ix_outbox_sms_id"), ["sms_id"], unique=False)
    op.create_table(
        "calltask",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("town", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_by_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["done_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_calltask_case_id"), "calltask", ["case_id"], unique=False)
    op.create_index("ix_calltask_open", "calltask", ["town", "done_at", "due_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_calltask_open", table_name="calltask")
    op.drop_index(op.f("ix_calltask_case_id"), table_name="calltask")
    op.drop_table("calltask")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index(batch.f("ix_outbox_sms_id"))
        batch.drop_column("receipt")
        batch.drop_column("sms_id")
        batch.drop_column("phone")
