"""微实事 as projects (rounds, proposals, funding, stages, objections, votes), 权责清单 with the unit on the case,
and 督办 of a whole town

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.coltypes

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
T = bot.coltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "projectround",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("town", S(length=16), nullable=False),
        sa.Column("name", S(length=64), nullable=False),
        sa.Column("objection_days", sa.Integer(), nullable=False),
        sa.Column("vote_open", sa.Boolean(), nullable=False),
        sa.Column("vote_closes_at", T(timezone=True), nullable=True),
        sa.Column("meeting_at", T(timezone=True), nullable=True),
        sa.Column("meeting_attendees", S(length=500), nullable=False),
        sa.Column("meeting_minutes", S(length=4000), nullable=False),
        sa.Column("meeting_considered", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", T(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("town", "name"),
    )
    op.create_index(op.f("ix_projectround_town"), "projectround", ["town"], unique=False)
    op.create_table(
        "project",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("town", S(length=16), nullable=False),
        sa.Column("community", S(length=64), nullable=False),
        sa.Column("title", S(length=64), nullable=False),
        sa.Column("summary", S(length=1000), nullable=False),
        sa.Column("category", S(length=32), nullable=False),
        sa.Column("source", S(length=16), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("status", S(length=16), nullable=False),
        sa.Column("visit_notes", S(length=2000), nullable=False),
        sa.Column("visit_photos", sa.JSON(), nullable=False),
        sa.Column("visited_at", T(timezone=True), nullable=True),
        sa.Column("decision_note", S(length=500), nullable=False),
        sa.Column("decided_at", T(timezone=True), nullable=True),
        sa.Column("budget_fen", sa.Integer(), nullable=False),
        sa.Column("unit", S(length=64), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("approved_at", T(timezone=True), nullable=True),
        sa.Column("notice_until", T(timezone=True), nullable=True),
        sa.Column("started_at", T(timezone=True), nullable=True),
        sa.Column("accepted_at", T(timezone=True), nullable=True),
        sa.Column("acceptance_note", S(length=1000), nullable=False),
        sa.Column("acceptance_photos", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", T(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["projectround.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_project_round_id"), "project", ["round_id"], unique=False)
    op.create_index(op.f("ix_project_case_id"), "project", ["case_id"], unique=False)
    op.create_index("ix_project_town_status", "project", ["town", "status"], unique=False)
    op.create_table(
        "projectfunding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("source", S(length=16), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("sponsor", S(length=64), nullable=False),
        sa.Column("sponsor_public", sa.Boolean(), nullable=False),
        sa.Column("fund_entry_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["fund_entry_id"], ["fundentry.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_projectfunding_project_id"), "projectfunding", ["project_id"], unique=False)
    op.create_table(
        "projectstage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", S(length=32), nullable=False),
        sa.Column("note", S(length=1000), nullable=False),
        sa.Column("photos", sa.JSON(), nullable=False),
        sa.Column("spent_fen", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("at", T(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_projectstage_project_id"), "projectstage", ["project_id"], unique=False)
    op.create_table(
        "projectobjection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("text", S(length=500), nullable=False),
        sa.Column("channel", S(length=16), nullable=False),
        sa.Column("answer", S(length=1000), nullable=True),
        sa.Column("answered_by_id", sa.Integer(), nullable=True),
        sa.Column("answered_at", T(timezone=True), nullable=True),
        sa.Column("created_at", T(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["answered_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_projectobjection_project_id"), "projectobjection", ["project_id"], unique=False)
    op.create_table(
        "projectvote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("at", T(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["projectround.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["resident_id"], ["resident.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("round_id", "resident_id"),
    )
    op.create_index(op.f("ix_projectvote_project_id"), "projectvote", ["project_id"], unique=False)
    op.create_table(
        "responsibility",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", S(length=16), nullable=False),
        sa.Column("category", S(length=32), nullable=False),
        sa.Column("unit", S(length=64), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("updated_at", T(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "category"),
    )
    op.create_table(
        "townsupervision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("town", S(length=16), nullable=False),
        sa.Column("request", S(length=512), nullable=False),
        sa.Column("pressed_by_id", sa.Integer(), nullable=True),
        sa.Column("due_at", T(timezone=True), nullable=False),
        sa.Column("escalated_at", T(timezone=True), nullable=True),
        sa.Column("answer", S(length=1000), nullable=True),
        sa.Column("answered_by_id", sa.Integer(), nullable=True),
        sa.Column("answered_at", T(timezone=True), nullable=True),
        sa.Column("created_at", T(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pressed_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["answered_by_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_townsupervision_town"), "townsupervision", ["town"], unique=False)
    op.create_index(
        "ix_townsupervision_due", "townsupervision", ["answered_at", "escalated_at", "due_at"], unique=False
    )
    with op.batch_alter_table("case") as batch:
        batch.add_column(sa.Column("unit", S(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case") as batch:
        batch.drop_column("unit")
    op.drop_index("ix_townsupervision_due", table_name="townsupervision")
    op.drop_index(op.f("ix_townsupervision_town"), table_name="townsupervision")
    op.drop_table("townsupervision")
    op.drop_table("responsibility")
    op.drop_index(op.f("ix_projectvote_project_id"), table_name="projectvote")
    op.drop_table("projectvote")
    op.drop_index(op.f("ix_projectobjection_project_id"), table_name="projectobjection")
    op.drop_table("projectobjection")
    op.drop_index(op.f("ix_projectstage_project_id"), table_name="projectstage")
    op.drop_table("projectstage")
    op.drop_index(op.f("ix_projectfunding_project_id"), table_name="projectfunding")
    op.drop_table("projectfunding")
    op.drop_index("ix_project_town_status", table_name="project")
    op.drop_index(op.f("ix_project_case_id"), table_name="project")
    op.drop_index(op.f("ix_project_round_id"), table_name="project")
    op.drop_table("project")
    op.drop_index(op.f("ix_projectround_town"), table_name="projectround")
    op.drop_table("projectround")
