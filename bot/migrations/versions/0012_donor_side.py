"""圆梦墙, the donor's side: group claims, trusted donors confirmed at once where the town allows it, the resident's
thanks relayed to the donor, the opt-in public list of donors, claims made by a pool resource

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_S = sqlmodel.sql.sqltypes.AutoString
_T = bot.models.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("resource") as batch:
        batch.add_column(sa.Column("trusted", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("listed_at", _T(timezone=True), nullable=True))
    with op.batch_alter_table("wallclaim") as batch:
        batch.add_column(sa.Column("resource_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("group_token", _S(length=48), nullable=True))
        batch.add_column(sa.Column("auto_confirmed", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("listed_at", _T(timezone=True), nullable=True))
        batch.add_column(sa.Column("thanks", _S(length=300), nullable=True))
        batch.add_column(sa.Column("thanks_at", _T(timezone=True), nullable=True))
        batch.create_foreign_key(
            "fk_wallclaim_resource_id", "resource", ["resource_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_wallclaim_resource_id", ["resource_id"], unique=False)
        batch.create_index("ix_wallclaim_group_token", ["group_token"], unique=False)
        batch.create_index("ix_wallclaim_status_thanks", ["status", "thanks_at"], unique=False)
    op.create_table(
        "townwallsetting",
        sa.Column("town", _S(length=16), nullable=False),
        sa.Column("auto_confirm_trusted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _T(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["updated_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("town"),
    )


def downgrade() -> None:
    op.drop_table("townwallsetting")
    with op.batch_alter_table("wallclaim") as batch:
        batch.drop_index("ix_wallclaim_status_thanks")
        batch.drop_index("ix_wallclaim_group_token")
        batch.drop_index("ix_wallclaim_resource_id")
        batch.drop_constraint("fk_wallclaim_resource_id", type_="foreignkey")
        for name in ("thanks_at", "thanks", "listed_at", "auto_confirmed", "group_token", "resource_id"):
            batch.drop_column(name)
    with op.batch_alter_table("resource") as batch:
        batch.drop_column("listed_at")
        batch.drop_column("trusted")
