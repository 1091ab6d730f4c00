"""Database tables (SQLModel). Timestamps are timezone-aware UTC; every sweep and queue query has an index."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.cases.titles import case_title

# re-exported: the migrations and many callers name these as bot.models.*
from bot.coltypes import UTCDateTime as UTCDateTime
from bot.coltypes import json_field as json_field
from bot.coltypes import ts as ts
from bot.coltypes import utcnow as utcnow


# ---------------------------------------------------------------- residents and conversations
class Resident(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    openid: str = Field(unique=True, max_length=64)
    phone: str | None = Field(default=None, max_length=32)
    consent_at: datetime | None = ts()
    consent_version: str | None = Field(default=None, max_length=16)
    subscribed: bool = True
    unsubscribed_at: datetime | None = ts()
    survey_opt_out: bool = False
    last_interaction_at: datetime | None = ts()  # opens WeChat's 48-hour customer-service window
    cs_sent_since_interaction: int = 0  # quota used in the current window
    # the community of the last community QR code scanned: the resident's next case belongs to it
    scan_community_id: int | None = Field(default=None, foreign_key="community.id", ondelete="SET NULL")
    scanned_at: datetime | None = ts()
    created_at: datetime = ts(default_now=True, nullable=False)


class Conversation(SQLModel, table=True):
    """The dialogue state of one resident, kept in the database so a restart loses nothing."""

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="resident.id", unique=True, ondelete="CASCADE")
    state: str = Field(default="idle", max_length=32)
    data: dict[str, Any] = json_field({})
    updated_at: datetime = ts(default_now=True, nullable=False)


class InboundMessage(SQLModel, table=True):
    """Every delivery from WeChat, once: the unique key makes retries (also concurrent ones) idempotent."""

    id: int | None = Field(default=None, primary_key=True)
    delivery_key: str = Field(unique=True, max_length=128)
    openid: str = Field(index=True, max_length=64)
    resident_id: int | None = Field(default=None, foreign_key="resident.id", ondelete="SET NULL", index=True)
    msg_type: str = Field(max_length=32)
    event: str | None = Field(default=None, max_length=64)
    text: str | None = None
    media: dict[str, Any] = json_field({})
    intent: str | None = Field(default=None, max_length=32)
    confidence: float | None = None
    nlu_source: str | None = Field(default=None, max_length=16)
    case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="SET NULL", index=True)
    reply: str | None = None
    reply_mode: str = Field(default="pending", max_length=16)  # pending | passive | outbox | none
    received_at: datetime = ts(default_now=True, nullable=False)


# ---------------------------------------------------------------- the registry of communities (村/社区)
class Community(SQLModel, table=True):
    """One village or community of a town (bot/cases/communities.py). Cases, staff and resources refer to it by
    id; ``qr_ticket``/``qr_url`` hold its permanent WeChat QR code (scene ``c:<id>``) once created."""

    __table_args__ = (sa.UniqueConstraint("town", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    town: str = Field(max_length=16, index=True)
    name: str = Field(max_length=32)
    kind: str = Field(default="社区", max_length=4)  # 社区 | 村
    active: bool = True
    qr_ticket: str | None = Field(default=None, max_length=128)
    qr_url: str | None = Field(default=None, max_length=256)
    created_at: datetime = ts(default_now=True, nullable=False)
    updated_at: datetime = ts(default_now=True, nullable=False)


def community_fk() -> Any:
    return Field(default=None, foreign_key="community.id", ondelete="SET NULL", index=True)


# ---------------------------------------------------------------- staff
class Staff(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=64)
    display_name: str = Field(default="", max_length=64)
    password_hash: str = Field(default="", max_length=256)
    role: str = Field(
        max_length=32
    )  # community_worker | town_staff | town_supervisor | city_supervisor | admin
    town: str | None = Field(default=None, max_length=16, index=True)
    community: str | None = Field(default=None, max_length=64)  # the name, for display; filters use the id
    community_id: int | None = community_fk()
    openid: str | None = Field(default=None, unique=True, max_length=64)
    bind_code: str | None = Field(default=None, max_length=16)
    bind_code_expires: datetime | None = ts()
    failed_logins: int = 0  # failed password sign-ins since the last success (incremented in SQL)
    locked_until: datetime | None = ts()  # no longer set: sign-in is throttled per account and address
    active: bool = True
    # signed into every session cookie; bumped on logout, password/role/town change and deactivation, so
    # an old cookie stops working on the server side at once
    session_epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = ts(default_now=True, nullable=False)


class SignInAttempt(SQLModel, table=True):
    """One attempt at a guarded secret (password, staff binding code, hotline binding code), counted per
    scope and key (an account+address pair, an openid, an address; hashed, never the raw value) inside a
    time window. Rows are written before the secret is checked, so concurrent attempts cannot overshoot."""

    __table_args__ = (sa.Index("ix_signinattempt_scope_key_at", "scope", "key", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=16)  # password | staff_bind | case_bind
    key: str = Field(max_length=64)
    failed: bool = True
    at: datetime = ts(default_now=True, nullable=False)


class AuditLog(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    staff_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL", index=True)
    action: str = Field(max_length=64)
    case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="SET NULL", index=True)
    detail: str = ""
    ip: str | None = Field(default=None, max_length=64)
    at: datetime = ts(default_now=True, nullable=False, index=True)


class Category(SQLModel, table=True):
    """Categories staff can edit (DOMAIN.md's list is the seed)."""

    __table_args__ = (sa.UniqueConstraint("kind", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=32)
    active: bool = True
    sort: int = 0


# ---------------------------------------------------------------- cases
class Case(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_case_town_status_created", "town", "status", "created_at"),
        sa.Index("ix_case_deadline_open", "stage_deadline", "status"),
        # PostgreSQL's queue page (a town's newest cases); empty on SQLite, whose planner misused it (0020)
        sa.Index("ix_case_town_created", "town", "created_at", sqlite_where=sa.text("0")),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_no: str = Field(unique=True, max_length=24)
    kind: str = Field(max_length=16, index=True)  # micro_wish | micro_project
    status: str = Field(default="submitted", max_length=16, index=True)
    category: str | None = Field(default=None, max_length=32)
    suggested_category: str | None = Field(default=None, max_length=32)
    description: str = ""
    item: str | None = Field(default=None, max_length=64)
    quantity: int | None = None
    town: str = Field(max_length=16)
    community: str | None = Field(default=None, max_length=64)  # the name, for display; filters use the id
    community_id: int | None = community_fk()
    address: str | None = Field(default=None, max_length=128)
    beneficiary: str | None = Field(default=None, max_length=32)
    contact_phone: str | None = Field(default=None, max_length=32)
    resident_id: int | None = Field(default=None, foreign_key="resident.id", ondelete="SET NULL", index=True)
    channel: str = Field(default="wechat", max_length=16)  # wechat | qrcode | hotline_12345 | window | staff
    bind_code: str | None = Field(default=None, max_length=16, index=True)
    claimed_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL", index=True)
    merged_into_id: int | None = Field(default=None, foreign_key="case.id", ondelete="SET NULL")
    unit: str | None = Field(default=None, max_length=64)  # the responsible unit (权责清单) when dispatched
    needs_triage: bool = False  # created while the NLU was degraded: staff check kind and category
    flag: str | None = Field(default=None, max_length=32, index=True)  # e.g. match_exhausted, low_score
    awaiting_resident: bool = False  # staff asked a question; the clock is paused
    # deadline of the current stage (absolute), with reminder/escalation marks
    stage_deadline: datetime | None = ts()
    stage_started_at: datetime | None = ts()
    paused_at: datetime | None = ts()
    reminded_at: datetime | None = ts()
    escalated_at: datetime | None = ts()
    escalated_city_at: datetime | None = ts()
    resident_nudged_at: datetime | None = ts()
    created_at: datetime = ts(default_now=True, nullable=False)
    updated_at: datetime = ts(default_now=True, nullable=False)
    completed_at: datetime | None = ts()
    closed_at: datetime | None = ts()

    @property
    def title(self) -> str:
        """What is needed and for whom ("轮椅 · 给母亲"), the same on every page and in the chat."""
        return case_title(
            item=self.item, quantity=self.quantity, beneficiary=self.beneficiary, description=self.description
        )


class CaseEvent(SQLModel, table=True):
    """The timeline: every transition, note, message and edit of a case."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", ondelete="CASCADE", index=True)
    at: datetime = ts(default_now=True, nullable=False)
    actor_type: str = Field(max_length=16)  # resident | staff | system | volunteer
    actor_id: int | None = None
    actor_name: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=24)  # transition | note | message | edit | question | answer | photo
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str | None = Field(default=None, max_length=16)
    note: str = ""
    data: dict[str, Any] = json_field({})
    # the tamper-evident chain (bot/cases/chain.py): this event's hash, chained to the previous event of the case;
    # the digest of the personal part once it has been erased (deletion request, retention sweep)
    chain_hash: str | None = Field(default=None, max_length=64)
    erased_digest: str | None = Field(default=None, max_length=64)


class CaseSeq(SQLModel, table=True):
    """Per-day counter for human-friendly case numbers (MS20261123-0007)."""

    day: str = Field(primary_key=True, max_length=8)
    last: int = 0


# ---------------------------------------------------------------- outbox
class Outbox(SQLModel, table=True):
    """Every message to a resident, staff member or volunteer, written in the same transaction as its cause."""

    __table_args__ = (sa.Index("ix_outbox_due", "status", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str | None = Field(default=None, unique=True, max_length=128)
    openid: str = Field(max_length=64, index=True)
    recipient_type: str = Field(default="resident", max_length=16)  # resident | staff | volunteer
    kind: str = Field(
        max_length=24
    )  # reply | progress | reminder | escalation | offer | survey | digest | alert
    text: str
    template: dict[str, Any] = json_field({})  # short fields for the template channel (≤ 20 chars each)
    link: str | None = None
    case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="SET NULL", index=True)
    status: str = Field(default="pending", max_length=16)  # pending | sending | sent | failed | unreachable
    attempts: int = 0
    next_attempt_at: datetime = ts(default_now=True, nullable=False)
    last_error: str | None = None
    channel: str | None = Field(default=None, max_length=16)  # custom | template | sms
    created_at: datetime = ts(default_now=True, nullable=False)
    sent_at: datetime | None = ts()
    # SMS: a row with a phone goes out as a text message (a resident without WeChat, or WeChat said 43004)
    phone: str | None = Field(default=None, max_length=32)
    sms_id: str | None = Field(default=None, max_length=64, index=True)  # the provider's message id
    receipt: str | None = Field(default=None, max_length=64)  # the provider's delivery receipt


# ---------------------------------------------------------------- resource pool and matching
class Resource(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_resource_town_active", "home_town", "active"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=32)  # stable key used by import/export
    kind: str = Field(max_length=16)  # enterprise | organisation | individual
    name: str = Field(max_length=128)
    contact: str = Field(default="", max_length=64)
    phone: str | None = Field(default=None, max_length=32)
    openid: str | None = Field(default=None, unique=True, max_length=64)
    bind_code: str | None = Field(default=None, max_length=16)
    categories: list[str] = json_field([])
    items: list[str] = json_field([])
    home_town: str = Field(max_length=16)
    community_id: int | None = community_fk()  # where the donor is based, when known
    towns_served: list[str] = json_field([])  # empty = city-wide
    capacity_open: int = 2
    capacity_month: int = 4
    max_fund: int | None = None
    available: bool = True
    active: bool = True
    offers: int = 0
    accepts: int = 0
    declines: int = 0
    timeouts: int = 0
    completions: int = 0
    rating_sum: float = 0
    rating_count: int = 0
    created_at: datetime = ts(default_now=True, nullable=False)
    updated_at: datetime = ts(default_now=True, nullable=False)
    # 圆梦墙: staff mark a donor trusted (a town that allows it confirms their claims at once; audited)
    trusted: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # when the donor agreed to be named on the public list of donors (None: not listed)
    listed_at: datetime | None = ts()


class Offer(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_offer_due", "status", "deadline"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", ondelete="CASCADE", index=True)
    resource_id: int = Field(foreign_key="resource.id", ondelete="CASCADE", index=True)
    status: str = Field(default="offered", max_length=16)
    # offered | accepted | declined | timeout | withdrawn | delivered | done
    score: float | None = None
    components: dict[str, Any] = json_field({})
    offered_at: datetime = ts(default_now=True, nullable=False)
    deadline: datetime | None = ts()
    reminded_at: datetime | None = ts()
    answered_at: datetime | None = ts()
    finished_at: datetime | None = ts()


class Lead(SQLModel, table=True):
    """Someone who offered help (in chat, or through the sign-up page): staff follow up before ``due_at`` and
    add them to the pool (bot/pool/leads.py)."""

    __table_args__ = (sa.Index("ix_lead_open_due", "state", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    openid: str = Field(max_length=64, index=True)  # "" for a sign-up without WeChat
    text: str = ""
    handled: bool = False
    created_at: datetime = ts(default_now=True, nullable=False)
    source: str = Field(default="chat", max_length=16, sa_column_kwargs={"server_default": "chat"})
    state: str = Field(default="new", max_length=16, sa_column_kwargs={"server_default": "new"})
    # new | contacted | joined | declined
    town: str | None = Field(default=None, max_length=16, index=True)  # None: not known yet
    resource_id: int | None = Field(default=None, foreign_key="resource.id", ondelete="SET NULL")  # a sign-up
    assigned_to_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    note: str = Field(default="", sa_column_kwargs={"server_default": ""})  # the reason when declined
    due_at: datetime | None = ts()
    reminded_at: datetime | None = ts()
    updated_at: datetime | None = ts()


# ---------------------------------------------------------------- 圆梦墙 (the wish wall, bot/pool/wall.py)
class WallWish(SQLModel, table=True):
    """A verified micro-wish published on the public wall under a public id, with wording staff approved.

    ``status``: open | reserved | confirmed | fulfilled | withdrawn | matched_offer (a pushed offer won)."""

    __table_args__ = (
        sa.Index("ix_wallwish_status_town", "status", "town"),
        sa.Index("ix_wallwish_reserved", "status", "reserved_until"),
    )
    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(unique=True, max_length=16)
    case_id: int = Field(foreign_key="case.id", ondelete="CASCADE", unique=True)
    town: str = Field(max_length=16)
    community: str | None = Field(default=None, max_length=64)
    category: str = Field(default="", max_length=32)
    public_text: str = Field(max_length=200)
    handover: str = Field(default="community_centre", max_length=24)  # community_centre | door_with_staff
    status: str = Field(default="open", max_length=16)
    claim_id: int | None = None  # the claim that holds it (reserved / confirmed / fulfilled)
    reserved_until: datetime | None = ts()
    published_at: datetime = ts(default_now=True, nullable=False)
    published_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    updated_at: datetime = ts(default_now=True, nullable=False)


class WallClaim(SQLModel, table=True):
    """A donor's claim of a wall wish: reserved until staff confirm it (or the reservation expires)."""

    __table_args__ = (sa.Index("ix_wallclaim_status_thanks", "status", "thanks_at"),)
    id: int | None = Field(default=None, primary_key=True)
    wish_id: int = Field(foreign_key="wallwish.id", ondelete="CASCADE", index=True)
    token: str = Field(unique=True, max_length=48)  # the donor's own page /wall/claims/<token>
    donor_name: str = Field(max_length=64)
    donor_type: str = Field(max_length=16)  # individual | enterprise | organisation | party_branch
    phone: str = Field(max_length=32)
    message: str = Field(default="", max_length=200)  # 寄语 to the resident, shown when fulfilled
    status: str = Field(
        default="reserved", max_length=16
    )  # reserved | confirmed | fulfilled | expired | declined
    created_at: datetime = ts(default_now=True, nullable=False)
    reserved_until: datetime | None = ts()
    confirmed_at: datetime | None = ts()
    confirmed_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    finished_at: datetime | None = ts()
    # the pool's resource when the claim came from a bound volunteer (chat) or a donor's signed link
    resource_id: int | None = Field(default=None, foreign_key="resource.id", ondelete="SET NULL", index=True)
    group_token: str | None = Field(
        default=None, max_length=48, index=True
    )  # one group claim of several wishes
    auto_confirmed: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    listed_at: datetime | None = ts()  # the donor agreed to be named on the public list (with the date)
    thanks: str | None = Field(default=None, max_length=300)  # the resident's thanks, relayed to the donor
    thanks_at: datetime | None = ts()


class TownWallSetting(SQLModel, table=True):
    """圆梦墙 settings of one town: whether claims by trusted donors are confirmed at once (changes audited)."""

    town: str = Field(primary_key=True, max_length=16)
    auto_confirm_trusted: bool = False
    updated_at: datetime = ts(default_now=True, nullable=False)
    updated_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")


class CallBack(SQLModel, table=True):
    """A resident asked for a person: staff of the town phone them back before `due_at`."""

    __table_args__ = (
        sa.Index("ix_callback_open", "town", "done_at", "due_at"),
        sa.Index("ix_callback_due", "done_at", "due_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    resident_id: int | None = Field(default=None, foreign_key="resident.id", ondelete="SET NULL", index=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="SET NULL")
    # None: the town is not known yet (city staff route it)
    town: str | None = Field(default=None, max_length=16)
    phone: str = Field(max_length=32)
    note: str = ""  # what the resident said when asking
    created_at: datetime = ts(default_now=True, nullable=False)
    due_at: datetime = ts(nullable=False)
    done_at: datetime | None = ts()
    done_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    # the call queue's deadline ladder (bot.deadlines.sweeps.call_deadlines): reminded, then escalated
    reminded_at: datetime | None = ts()
    escalated_at: datetime | None = ts()


class CallTask(SQLModel, table=True):
    """回访: neither WeChat nor SMS reached the resident, so staff of the town phone them before `due_at` and record
    the answer (a score 1-5, or that nobody could be reached), which closes the loop as a chat answer would."""

    __table_args__ = (
        sa.Index("ix_calltask_open", "town", "done_at", "due_at"),
        sa.Index("ix_calltask_due", "done_at", "due_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", ondelete="CASCADE", index=True)
    town: str = Field(max_length=16)
    phone: str | None = Field(default=None, max_length=32)
    reason: str = Field(default="", max_length=200)
    created_at: datetime = ts(default_now=True, nullable=False)
    due_at: datetime = ts(nullable=False)
    done_at: datetime | None = ts()
    done_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    outcome: str | None = Field(default=None, max_length=16)  # answered | unreachable
    score: int | None = None
    note: str | None = None
    reminded_at: datetime | None = ts()
    escalated_at: datetime | None = ts()


# ---------------------------------------------------------------- deadlines and surveys
class SlaPolicy(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("kind", "stage"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # micro_wish | micro_project | any
    stage: str = Field(max_length=16)  # a case status, or "offer" / "survey"
    amount: int
    unit: str = Field(max_length=16)  # working_days | hours | days
    remind_before_hours: int = 4


class Survey(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_survey_due", "status", "deadline"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", ondelete="CASCADE", unique=True)
    resident_id: int | None = Field(default=None, foreign_key="resident.id", ondelete="SET NULL")
    status: str = Field(default="sent", max_length=16)  # sent | answered | expired
    sent_at: datetime = ts(default_now=True, nullable=False)
    deadline: datetime | None = ts()
    reminded_at: datetime | None = ts()
    score: int | None = None
    comment: str | None = None
    answered_at: datetime | None = ts()
    via: str | None = Field(default=None, max_length=16)  # chat | page


class Feedback(SQLModel, table=True):
    """Praise or complaints outside a survey, recorded against the resident's latest case."""

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int | None = Field(default=None, foreign_key="resident.id", ondelete="SET NULL", index=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="SET NULL", index=True)
    score: int | None = None
    text: str = ""
    created_at: datetime = ts(default_now=True, nullable=False)


class Notice(SQLModel, table=True):
    """信息发布: announcements staff publish on the public pages."""

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=128)
    body: str = ""
    town: str | None = Field(default=None, max_length=16, index=True)  # None = city-wide
    published_at: datetime = ts(default_now=True, nullable=False, index=True)
    author_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")


# ---------------------------------------------------------------- the open API (bot/api)
class ApiClient(SQLModel, table=True):
    """A caller of the open API (12345, 一网统管, …): its key is stored hashed; scopes and an optional town."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    key_prefix: str = Field(unique=True, max_length=16)
    key_hash: str = Field(max_length=64)
    scopes: list[str] = json_field([])
    town: str | None = Field(default=None, max_length=16)
    active: bool = True
    created_at: datetime = ts(default_now=True, nullable=False)
    revoked_at: datetime | None = ts()
    last_used_at: datetime | None = ts()


class ApiCaseRef(SQLModel, table=True):
    """The caller's own id of a case it created: creating twice with the same id returns the first case."""

    __table_args__ = (sa.UniqueConstraint("client_id", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="apiclient.id", ondelete="CASCADE")
    external_id: str = Field(max_length=64)
    case_id: int = Field(foreign_key="case.id", ondelete="CASCADE", index=True)
    created_at: datetime = ts(default_now=True, nullable=False)


class ApiSubscription(SQLModel, table=True):
    """A callback URL told of every status change of the cases the client may read."""

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="apiclient.id", ondelete="CASCADE", index=True)
    url: str = Field(max_length=512)
    secret: str = Field(max_length=64)
    active: bool = True
    last_event_id: int = 0  # the timeline cursor: events after it are still to be sent
    created_at: datetime = ts(default_now=True, nullable=False)


class ApiCallback(SQLModel, table=True):
    """One signed POST to a subscriber, retried with backoff, then parked as dead for staff to replay."""

    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "event_id"),
        sa.Index("ix_apicallback_due", "status", "next_attempt_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="apisubscription.id", ondelete="CASCADE")
    event_id: int
    case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="SET NULL")
    body: str = ""
    status: str = Field(default="pending", max_length=16)  # pending | sent | dead
    attempts: int = 0
    next_attempt_at: datetime = ts(default_now=True, nullable=False)
    last_error: str | None = Field(default=None, max_length=256)
    created_at: datetime = ts(default_now=True, nullable=False)
    sent_at: datetime | None = ts()


class QueryCode(SQLModel, table=True):
    """A web query of one case: the SMS code sent to the phone it was registered with (stored hashed).

    A row is written whether or not the case number and phone match, so the page answers the same either way."""

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(unique=True, max_length=48)
    case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="CASCADE")
    code_hash: str = Field(max_length=64)
    attempts: int = 0
    expires_at: datetime = ts(nullable=False)
    used_at: datetime | None = ts()
    created_at: datetime = ts(default_now=True, nullable=False, index=True)


# ---------------------------------------------------------------- the government's side (bot/cases/policies, funds, supervision)
class WelfarePolicy(SQLModel, table=True):
    """A livelihood policy of the catalogue (最低生活保障, 临时救助, …) that may cover a wish; admins edit it."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=32)
    name: str = Field(max_length=64)
    department: str = Field(max_length=64)
    qualifies: str = ""  # who qualifies
    gives: str = ""  # what it gives
    how_to_apply: str = ""
    documents: str = ""
    categories: list[str] = json_field([])  # wish categories it may cover
    keywords: list[str] = json_field([])  # words in a wish that suggest it
    active: bool = True
    updated_at: datetime = ts(default_now=True, nullable=False)


class PolicyReferral(SQLModel, table=True):
    """A case routed to a policy: the department, what was applied for, its deadline and the outcome."""

    __table_args__ = (sa.Index("ix_policyreferral_open", "outcome", "deadline"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", ondelete="CASCADE", index=True)
    policy_id: int | None = Field(default=None, foreign_key="welfarepolicy.id", ondelete="SET NULL")
    policy_name: str = Field(max_length=64)  # as it was called when applied for
    department: str = Field(max_length=64)
    applied_for: str = Field(max_length=256)
    deadline: datetime | None = ts()
    outcome: str = Field(default="pending", max_length=16)  # pending | granted | refused
    outcome_note: str | None = Field(default=None, max_length=256)
    created_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    created_at: datetime = ts(default_now=True, nullable=False)
    decided_at: datetime | None = ts()


class FundAccount(SQLModel, table=True):
    """The money a town can spend on wishes from one source (the town's own budget, or the 慈善会 fund), in fen.

    The balance moves only by a conditional UPDATE in the same transaction as its ledger entry."""

    __table_args__ = (sa.UniqueConstraint("town", "source"),)
    id: int | None = Field(default=None, primary_key=True)
    town: str = Field(max_length=16)
    source: str = Field(max_length=16)  # town | charity
    balance_fen: int = 0
    updated_at: datetime = ts(default_now=True, nullable=False)


class FundEntry(SQLModel, table=True):
    """One line of a town's fund ledger: an allocation (money in) or a spending (a wish paid for)."""

    __table_args__ = (sa.Index("ix_fundentry_town_at", "town", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    town: str = Field(max_length=16)
    source: str = Field(max_length=16)
    kind: str = Field(max_length=16)  # allocation | spending
    amount_fen: int
    balance_after_fen: int
    case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="SET NULL", index=True)
    note: str = Field(default="", max_length=256)
    staff_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    approved_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")  # overdraft
    at: datetime = ts(default_now=True, nullable=False)


class Supervision(SQLModel, table=True):
    """督办: the city presses a case; the town answers by its own deadline, or it is escalated."""

    __table_args__ = (sa.Index("ix_supervision_due", "answered_at", "escalated_at", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", ondelete="CASCADE", index=True)
    town: str = Field(max_length=16)
    request: str = Field(max_length=512)
    pressed_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    due_at: datetime = ts(nullable=False)
    escalated_at: datetime | None = ts()
    answer: str | None = Field(default=None, max_length=1000)
    answered_by_id: int | None = Field(default=None, foreign_key="staff.id", ondelete="SET NULL")
    answered_at: datetime | None = ts()
    created_at: datetime = ts(default_now=True, nullable=False)


# ---------------------------------------------------------------- micro-projects, 权责清单, 督办 of a town
# registered in the same metadata; defined beside their package (bot/projects/) to keep this module small
from bot.projects.tables import (  # noqa: E402, F401
    Project,
    ProjectFunding,
    ProjectObjection,
    ProjectRound,
    ProjectStage,
    ProjectVote,
    Responsibility,
    TownSupervision,
)
