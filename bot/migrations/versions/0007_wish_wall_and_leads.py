"""圆梦墙 and the leads inbox: published wishes (public id, approved wording) and donors' claims of them; a lead
(chat offer of help or self sign-up) gets a source, a state, a town, an assignee, a deadline and a reminder mark

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_S = sqlmodel.sql.sqltypes.AutoString
_T = bot.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "wallwish",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", _S(length=16), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("town", _S(length=16), nullable=False),
        sa.Column("community", _S(length=64), nullable=True),
        sa.Column("category", _S(length=32), nullable=False),
        sa.Column("public_text", _S(length=200), nullable=False),
        sa.Column("handover", _S(length=24), nullable=False),
        sa.Column("status", _S(length=16), nullable=False),
        sa.Column("claim_id", sa.Integer(), nullable=True),
        sa.Column("reserved_until", _T(timezone=True), nullable=True),
        sa.Column("published_at", _T(timezone=True), nullable=False),
        sa.Column("published_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", _T(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["published_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
        sa.UniqueConstraint("case_id"),
    )
    op.create_index("ix_wallwish_status_town", "wallwish", ["status", "town"], unique=False)
    op.create_index("ix_wallwish_reserved", "wallwish", ["status", "reserved_until"], unique=False)
    op.create_table(
        "wallclaim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wish_id", sa.Integer(), nullable=False),
        sa.Column("token", _S(length=48), nullable=False),
        sa.Column("donor_name", _S(length=64), nullable=False),
        sa.Column("donor_type", _S(length=16), nullable=False),
        sa.Column("phone", _S(length=32), nullable=False),
        sa.Column("message", _S(length=200), nullable=False),
        sa.Column("status", _S(length=16), nullable=False),
        sa.Column("created_at", _T(timezone=True), nullable=False),
        sa.Column("reserved_until", _T(timezone=True), nullable=True),
        sa.Column("confirmed_at", _T(timezone=True), nullable=True),
        sa.Column("confirmed_by_id", sa.Integer(), nullable=True),
        sa.Column("finished_at", _T(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["wish_id"], ["wallwish.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["confirmed_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    op.create_index(op.f("ix_wallclaim_wish_id"), "wallclaim", ["wish_id"], unique=False)
    with op.batch_alter_table("lead") as batch:
        batch.add_column(sa.Column("source", _S(length=16), server_default="chat", nullable=False))
        batch.add_column(sa.Column("state", _S(length=16), server_default="new", nullable=False))
        batch.add_column(sa.Column("town", _S(length=16), nullable=True))
        batch.add_column(sa.Column("resource_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("assigned_to_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("note", _S(), server_default="", nullable=False))
        batch.add_column(sa.Column("due_at", _T(timezone=True), nullable=True))
        batch.add_column(sa.Column("reminded_at", _T(timezone=True), nullable=True))
        batch.add_column(sa.Column("updated_at", _T(timezone=True), nullable=True))
        batch.create_foreign_key(
            "fk_lead_resource_id", "resource", ["resource_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_foreign_key(
            "fk_lead_assigned_to_id", "staff", ["assigned_to_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_lead_town", ["town"], unique=False)
        batch.create_index("ix_lead_open_due", ["state", "due_at"], unique=False)
    # a lead staff already handled counts as contacted
    op.execute("UPDATE lead SET state = 'contacted' WHERE handled")


def downgrade() -> None:
    with op.batch_alter_table("lead") as batch:
        batch.drop_index("ix_lead_open_due")
        batch.drop_index("ix_lead_town")
        batch.drop_constraint("fk_lead_assigned_to_id", type_="foreignkey")
        batch.drop_constraint("fk_lead_resource_id", type_="foreignkey")
        for name in ("updated_at", "reminded_at", "due_at", "note", "assigned_to_id", "resource_id", "town"):
            batch.drop_column(name)
        batch.drop_column("state")
        batch.drop_column("source")
    op.drop_index(op.f("ix_wallclaim_wish_id"), table_name="wallclaim")
    op.drop_table("wallclaim")
    op.drop_index("ix_wallwish_reserved", table_name="wallwish")
    op.drop_index("ix_wallwish_status_town", table_name="wallwish")
    op.drop_table("wallwish")
