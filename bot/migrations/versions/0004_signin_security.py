"""sign-in security: a session epoch on staff (server-side revocation of session cookies) and the attempt
table that throttles passwords and binding codes per account+address, openid and address

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "signinattempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signinattempt_scope_key_at", "signinattempt", ["scope", "key", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_signinattempt_scope_key_at", table_name="signinattempt")
    op.drop_table("signinattempt")
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("session_epoch")
