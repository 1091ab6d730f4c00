"""What an API caller may read and write about cases, always inside its jurisdiction and scopes.

Every function takes the :class:`~bot.api.clients.Caller`; a case outside the caller's town is treated exactly as a
case that does not exist. Resident text and phone numbers are masked unless the caller holds ``cases:pii``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.api.clients import TOWN_NAMES, Caller
from bot.cases.actors import Actor
from bot.cases.communities import CommunityError, get_in_town
from bot.cases.lifecycle import STATE_LABEL
from bot.cases.numbering import KIND_LABEL, create_case
from bot.cases.timeline import record_event
from bot.models import ApiCaseRef, Case, CaseEvent, Category
from reference.privacy import mask_phone, mask_text, parse_phone_field

MAX_DESCRIPTION = 2000
MAX_NOTE = 500
PAGE_MAX = 100
UNKNOWN_COMMUNITY = "{town}的村（社区）名单中没有编号为 {id} 的村（社区）（或已停用）"
MAX_ID = 2**31 - 1  # a community id beyond a database integer names nothing


class Invalid(ValueError):
    """The request is well-formed JSON but asks for something the rules refuse (422)."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class NotFound(LookupError):
    """No such case for this caller (also: another town's case)."""


def iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def case_json(case: Case, caller: Caller, *, external_id: str | None = None) -> dict[str, Any]:
    pii = caller.may("cases:pii")
    return {
        "case_no": case.case_no,
        "external_id": external_id,
        "kind": case.kind,
        "kind_label": KIND_LABEL.get(case.kind, case.kind),
        "status": case.status,
        "status_label": STATE_LABEL.get(case.status, case.status),
        "category": case.category,
        "town": case.town,
        "community": case.community,
        "community_id": case.community_id,
        "item": case.item,
        "quantity": case.quantity,
        "description": case.description if pii else mask_text(case.description),
        "contact_phone": (case.contact_phone if pii else mask_phone(case.contact_phone)) or None,
        "channel": case.channel,
        "created_at": iso(case.created_at),
        "updated_at": iso(case.updated_at),
        "stage_deadline": iso(case.stage_deadline),
        "completed_at": iso(case.completed_at),
        "closed_at": iso(case.closed_at),
    }


def event_json(event: CaseEvent, caller: Caller) -> dict[str, Any]:
    note = event.note if caller.may("cases:pii") else mask_text(event.note)
    return {
        "id": event.id,
        "at": iso(event.at),
        "kind": event.kind,
        "actor_type": event.actor_type,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "note": note,
        "external_status": (event.data or {}).get("external_status"),
    }


def _text(body: dict[str, Any], name: str, *, required: bool, limit: int) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise Invalid(f"缺少字段 {name}", field=name)
        return None
    if not isinstance(value, str):
        raise Invalid(f"字段 {name} 应为字符串", field=name)
    value = value.strip()
    if required and not value:
        raise Invalid(f"字段 {name} 不能为空", field=name)
    if len(value) > limit or any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise Invalid(f"字段 {name} 过长或含控制字符（最多 {limit} 字）", field=name)
    return value


@dataclass(frozen=True)
class NewCase:
    external_id: str
    kind: str
    description: str
    town: str
    category: str | None
    item: str | None
    community: str | None
    community_id: int | None
    address: str | None
    contact_phone: str | None


async def _community_id(session: AsyncSession, body: dict[str, Any], town: str) -> int | None:
    """``community_id`` of a new case: absent or null, else an active community of ``town``'s registry."""
    value = body.get("community_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("字段 community_id 应为整数（村（社区）的编号）", field="community_id")
    if not 1 <= value <= MAX_ID:
        raise Invalid(UNKNOWN_COMMUNITY.format(town=town, id=value), field="community_id")
    try:
        row = await get_in_town(session, community_id=value, town=town)
    except CommunityError as exc:
        raise Invalid(UNKNOWN_COMMUNITY.format(town=town, id=value), field="community_id") from exc
    return row.id


async def parse_new_case(session: AsyncSession, body: dict[str, Any], caller: Caller) -> NewCase:
    external_id = _text(body, "external_id", required=True, limit=64)
    kind = _text(body, "kind", required=True, limit=16)
    if kind not in KIND_LABEL:
        raise Invalid(f"kind 应为 {' / '.join(KIND_LABEL)}", field="kind")
    town = _text(body, "town", required=True, limit=16)
    if town not in TOWN_NAMES:
        raise Invalid("未知的镇街（town 应为全称，如 厚街镇）", field="town")
    if caller.town is not None and town != caller.town:
        raise Invalid(f"此密钥只能为 {caller.town} 创建诉求", field="town")
    category = _text(body, "category", required=False, limit=32)
    if category is not None:
        known = await session.exec(
            select(Category).where(Category.kind == kind, Category.name == category, col(Category.active))
        )
        if known.first() is None:
            raise Invalid("未知的类别", field="category")
    community_id = await _community_id(session, body, town)
    phone_raw = _text(body, "contact_phone", required=False, limit=32)
    phone = parse_phone_field(phone_raw) if phone_raw else None
    if phone_raw and phone is None:
        raise Invalid("联系电话格式不正确", field="contact_phone")
    assert external_id and kind and town
    return NewCase(
        external_id=external_id,
        kind=kind,
        description=_text(body, "description", required=True, limit=MAX_DESCRIPTION) or "",
        town=town,
        category=category,
        item=_text(body, "item", required=False, limit=64),
        community=_text(body, "community", required=False, limit=64),
        community_id=community_id,
        address=_text(body, "address", required=False, limit=128),
        contact_phone=phone,
    )


async def existing_ref(session: AsyncSession, caller: Caller, external_id: str) -> Case | None:
    ref = (
        await session.exec(
            select(ApiCaseRef).where(ApiCaseRef.client_id == caller.id, ApiCaseRef.external_id == external_id)
        )
    ).first()
    return await session.get(Case, ref.case_id) if ref else None


async def create(session: AsyncSession, new: NewCase, caller: Caller, *, now: datetime) -> tuple[Case, bool]:
    """(case, created): the same external id twice gives the first case and False (idempotent)."""
    if (found := await existing_ref(session, caller, new.external_id)) is not None:
        return found, False
    case = await create_case(
        session,
        kind=new.kind,
        description=new.description,
        town=new.town,
        resident_id=None,
        channel="api",
        item=new.item,
        category=new.category,
        community=new.community,
        community_id=new.community_id,
        address=new.address,
        contact_phone=new.contact_phone,
        actor_type="api",
        actor_name=caller.name[:64],
        now=now,
    )
    assert case.id is not None
    session.add(ApiCaseRef(client_id=caller.id, external_id=new.external_id, case_id=case.id, created_at=now))
    try:
        await session.flush()
    except IntegrityError:  # a concurrent create with the same external id won: the caller retries the read
        raise
    return case, True


async def get(session: AsyncSession, caller: Caller, case_no: str) -> Case:
    if len(case_no) > 24:
        raise NotFound(case_no)
    query = select(Case).where(Case.case_no == case_no)
    if caller.town is not None:
        query = query.where(Case.town == caller.town)
    case = (await session.exec(query)).first()
    if case is None:
        raise NotFound(case_no)
    return case


async def external_id_of(session: AsyncSession, caller: Caller, case: Case) -> str | None:
    ref = (
        await session.exec(
            select(ApiCaseRef).where(ApiCaseRef.client_id == caller.id, ApiCaseRef.case_id == case.id)
        )
    ).first()
    return ref.external_id if ref else None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"c{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("cursor 无效", field="cursor") from exc
    if not raw.startswith("c") or not raw[1:].isascii() or not raw[1:].isdigit() or len(raw) > 12:
        raise Invalid("cursor 无效", field="cursor")
    return int(raw[1:])


@dataclass(frozen=True)
class CaseFilter:
    status: tuple[str, ...] = ()
    kind: str | None = None
    town: str | None = None
    updated_since: datetime | None = None
    after_id: int = 0
    limit: int = 20


async def list_cases(session: AsyncSession, caller: Caller, flt: CaseFilter) -> tuple[list[Case], str | None]:
    query = select(Case).where(col(Case.id) > flt.after_id)
    if caller.town is not None:
        query = query.where(Case.town == caller.town)
    if flt.town is not None:
        query = query.where(Case.town == flt.town)
    if flt.status:
        query = query.where(col(Case.status).in_(flt.status))
    if flt.kind is not None:
        query = query.where(Case.kind == flt.kind)
    if flt.updated_since is not None:
        query = query.where(col(Case.updated_at) >= flt.updated_since)
    rows = list((await session.exec(query.order_by(col(Case.id)).limit(flt.limit + 1))).all())
    more = len(rows) > flt.limit
    rows = rows[: flt.limit]
    return rows, (encode_cursor(rows[-1].id or 0) if more and rows else None)


async def timeline(session: AsyncSession, case: Case) -> list[CaseEvent]:
    query = (
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(col(CaseEvent.at), col(CaseEvent.id))
    )
    return list((await session.exec(query)).all())


async def add_note(
    session: AsyncSession, caller: Caller, case: Case, body: dict[str, Any], *, now: datetime
) -> CaseEvent:
    text = _text(body, "text", required=True, limit=MAX_NOTE) or ""
    external_status = _text(body, "external_status", required=False, limit=32)
    assert case.id is not None
    event = record_event(
        session,
        case=case,
        kind="note",
        actor=Actor("api", None, caller.name[:64]),
        at=now,
        note=text,
        data={"external_status": external_status} if external_status else {},
    )
    case.updated_at = now
    await session.flush()
    return event
