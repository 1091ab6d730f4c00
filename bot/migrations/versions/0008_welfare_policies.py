"""policy first: the catalogue of livelihood policies (seeded with a starter set) and the referrals of cases to them

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    policies = op.create_table(
        "welfarepolicy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("department", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("qualifies", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("gives", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("how_to_apply", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("documents", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "policyreferral",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("policy_name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("department", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("applied_for", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("deadline", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("outcome_note", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["policy_id"], ["welfarepolicy.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_policyreferral_case_id"), "policyreferral", ["case_id"], unique=False)
    op.create_index("ix_policyreferral_open", "policyreferral", ["outcome", "deadline"], unique=False)
    # the starter catalogue, frozen here as it was written (admins edit the rows afterwards)
    from datetime import UTC, datetime

    from bot.cases.policies import starter_rows  # the one written copy of the starter set

    now = datetime.now(UTC)
    op.bulk_insert(policies, [{**row, "active": True, "updated_at": now} for row in starter_rows()])


def downgrade() -> None:
    op.drop_index("ix_policyreferral_open", table_name="policyreferral")
    op.drop_index(op.f("ix_policyreferral_case_id"), table_name="policyreferral")
    op.drop_table("policyreferral")
    op.drop_table("welfarepolicy")
