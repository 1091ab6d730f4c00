"""The tables of micro-projects, the 权责清单 and 督办 of a town. Money is in fen; times are aware UTC.

Registered in the one metadata by ``bot.models`` (which imports this module at its end)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.coltypes import json_field, ts


class ProjectRound(SQLModel, table=True):
    """A selection round of a town (e.g. 2026年第一批): proposals considered at one 联席会议, an optional residents'
    vote, and the 公示 objection window (working days) of the projects it approves."""

    __table_args__ = (sa.UniqueConstraint("town", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    town: str = Field(max_length=16, index=True)
    name: str = Field(max_length=64)
    objection_days: int = 5
    vote_open: bool = False
    vote_closes_at: datetime | None = ts()
    meeting_at: datetime | None = ts()
    meeting_attendees: str = Field(default="", max_length=500)
    meeting_minutes: str = Field(default="", max_length=4000)
    meeting_considered: list[int] = json_field([])  # project ids on the list the meeting considered
    created_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    created_at: datetime = ts(default_now=True, nullable=False)


class Project(SQLModel, table=True):
    """One 微实事 from proposal to acceptance. ``status``: proposed → visited → selected | rejected → approved
    (公示 open) → in_progress → accepted."""

    __table_args__ = (
        sa.Index("ix_project_town_status", "town", "status"),
        sa.Index("ix_project_due", "status", "due_date", "overdue_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="projectround.id", ondelete="CASCADE", index=True)
    town: str = Field(max_length=16)
    community: str = Field(default="", max_length=64)
    title: str = Field(max_length=64)  # public: what is built or served, never a person
    summary: str = Field(default="", max_length=1000)  # public description written by staff
    category: str = Field(default="其他", max_length=32)
    source: str = Field(max_length=16)  # chat | staff | consultation
    case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="SET NULL", index=True)
    status: str = Field(default="proposed", max_length=16)
    visit_notes: str = Field(default="", max_length=2000)
    visit_photos: list[str] = json_field([])
    visited_at: datetime | None = ts()
    decision_note: str = Field(default="", max_length=500)
    decided_at: datetime | None = ts()
    budget_fen: int = 0
    unit: str = Field(default="", max_length=64)  # the implementing unit
    due_date: date | None = None
    approved_at: datetime | None = ts()
    notice_until: datetime | None = ts()  # end of the 公示 objection window
    started_at: datetime | None = ts()
    accepted_at: datetime | None = ts()
    overdue_at: datetime | None = ts()  # when the sweep reported it past its due date (once)
    acceptance_note: str = Field(default="", max_length=1000)
    acceptance_photos: list[str] = json_field([])
    # what happened to it besides its steps, oldest first: {"at", "kind": "carried", "from_round", "from_name",
    # "to_round", "to_name", "by"} when it was carried to a later round
    history: list[dict[str, Any]] = json_field([])
    created_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    created_at: datetime = ts(default_now=True, nullable=False)


class ProjectFunding(SQLModel, table=True):
    """A funding source of an approved project: city matching funds, the town's funds or the 慈善会 fund (both
    spent through the town's fund ledger, linked by ``fund_entry_id``), or a named sponsor who agreed."""

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", ondelete="CASCADE", index=True)
    source: str = Field(max_length=16)  # city | town | charity | sponsor
    amount_fen: int
    sponsor: str = Field(default="", max_length=64)
    sponsor_public: bool = False  # the sponsor agreed to be named on the public pages
    fund_entry_id: int | None = Field(default=None, foreign_key="fundentry.id", ondelete="SET NULL")


class ProjectStage(SQLModel, table=True):
    """Progress of the work: a stage with a note, photos and the money spent in it."""

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=32)
    note: str = Field(default="", max_length=1000)
    photos: list[str] = json_field([])
    spent_fen: int = 0
    staff_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    at: datetime = ts(default_now=True, nullable=False)


class ProjectObjection(SQLModel, table=True):
    """An objection raised during 公示 (on the public page or taken by staff) and the town's answer."""

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", ondelete="CASCADE", index=True)
    text: str = Field(max_length=500)
    channel: str = Field(max_length=16)  # public | staff
    answer: str | None = Field(default=None, max_length=1000)
    answered_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    answered_at: datetime | None = ts()
    created_at: datetime = ts(default_now=True, nullable=False)


class ProjectVote(SQLModel, table=True):
    """A resident's vote in a round: one per resident and round, enforced by the unique constraint."""

    __table_args__ = (sa.UniqueConstraint("round_id", "resident_id"),)
    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="projectround.id", ondelete="CASCADE")
    project_id: int = Field(foreign_key="project.id", ondelete="CASCADE", index=True)
    resident_id: int = Field(foreign_key="resident.id", ondelete="CASCADE")
    at: datetime = ts(default_now=True, nullable=False)


class Responsibility(SQLModel, table=True):
    """权责清单: for a case kind and category, the unit that answers for it and its time limit (working days)."""

    __table_args__ = (sa.UniqueConstraint("kind", "category"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # micro_wish | micro_project
    category: str = Field(max_length=32)
    unit: str = Field(max_length=64)
    days: int = 5
    updated_at: datetime = ts(default_now=True, nullable=False)


class TownSupervision(SQLModel, table=True):
    """督办 of a whole town: the city's request, the answer's deadline, escalation once, the town's answer."""

    __table_args__ = (sa.Index("ix_townsupervision_due", "answered_at", "escalated_at", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    town: str = Field(max_length=16, index=True)
    request: str = Field(max_length=512)
    pressed_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    due_at: datetime = ts(nullable=False)
    escalated_at: datetime | None = ts()
    answer: str | None = Field(default=None, max_length=1000)
    answered_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    answered_at: datetime | None = ts()
    created_at: datetime = ts(default_now=True, nullable=False)
