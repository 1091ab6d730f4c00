"""Media kept in the project's own storage (images and voice from WeChat, volunteers' photos): storedmedia

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "storedmedia",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("inbound_id", sa.Integer(), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("wechat_media_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("storage_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stored_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["inbound_id"], ["inboundmessage.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["event_id"], ["caseevent.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_storedmedia_case_id"), "storedmedia", ["case_id"], unique=False)
    op.create_index(op.f("ix_storedmedia_inbound_id"), "storedmedia", ["inbound_id"], unique=False)
    op.create_index("ix_storedmedia_due", "storedmedia", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_storedmedia_due", table_name="storedmedia")
    op.drop_index(op.f("ix_storedmedia_inbound_id"), table_name="storedmedia")
    op.drop_index(op.f("ix_storedmedia_case_id"), table_name="storedmedia")
    op.drop_table("storedmedia")
