"""Staff administration of the pool: who may see and edit a resource (jurisdiction), the filtered list, a
resource's history, editing, (de)activating, and the categories staff currently allow."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import CITY_ROLES, TOWN_WORKERS
from bot.models import Case, Category, Community, Offer, Resource, Staff
from bot.pool.config import DEFAULT_CONFIG, PoolConfig, PoolError
from bot.pool.offers import withdraw_inactive
from bot.pool.snapshot import POOL_CACHE, load_pool
from matching.model import CATEGORIES, CITY_WIDE, KIND_LABELS
from matching.model import Resource as EngineResource
from matching.scoring import town_name
from reference import towns
from reference.privacy import parse_phone_field


def serves(row: Resource, town: str) -> bool:
    served = row.towns_served or []
    return not served or CITY_WIDE in served or town in served or row.home_town == town


def can_see(staff: Staff, row: Resource) -> bool:
    return staff.role in CITY_ROLES or (staff.town is not None and serves(row, staff.town))


def can_edit(staff: Staff, row: Resource) -> bool:
    return staff.role in CITY_ROLES or (staff.role in TOWN_WORKERS and row.home_town == staff.town)


@dataclass(slots=True)
class PoolFilter:
    kind: str = ""
    category: str = ""
    town: str = ""
    active: str = ""  # "" | "1" | "0"
    q: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, query: Any) -> PoolFilter:
        page = query.get("page", "1")
        return cls(
            kind=query.get("kind", "")[:16],
            category=query.get("category", "")[:32],
            town=query.get("town", "")[:16],
            active=query.get("active", "")[:1],
            q=query.get("q", "").strip()[:64],
            page=max(1, min(int(page), 10_000)) if page.isdigit() else 1,
        )

    def params(self, **over: Any) -> dict[str, str]:
        values = {
            "kind": self.kind,
            "category": self.category,
            "town": self.town,
            "active": self.active,
            "q": self.q,
            "page": str(self.page),
        }
        values.update({k: str(v) for k, v in over.items()})
        return {k: v for k, v in values.items() if v and not (k == "page" and v == "1")}


@dataclass(slots=True)
class PoolPage:
    rows: list[tuple[Resource, EngineResource | None]]
    total: int
    page: int
    has_next: bool


async def list_pool(
    session: AsyncSession,
    *,
    staff: Staff,
    filters: PoolFilter,
    now: datetime,
    per_page: int = 30,
    config: PoolConfig = DEFAULT_CONFIG,
) -> PoolPage:
    stmt = select(Resource).order_by(col(Resource.key))
    if filters.kind:
        stmt = stmt.where(Resource.kind == filters.kind)
    if filters.active in ("0", "1"):
        stmt = stmt.where(Resource.active == (filters.active == "1"))
    if filters.q:
        like = f"%{filters.q}%"
        stmt = stmt.where(
            sa.or_(
                col(Resource.name).like(like), col(Resource.key).like(like), col(Resource.contact).like(like)
            )
        )
    rows = [r for r in (await session.exec(stmt)).all() if can_see(staff, r)]
    if filters.category:
        rows = [r for r in rows if filters.category in (r.categories or [])]
    if filters.town:
        town = town_name(filters.town)
        rows = [r for r in rows if serves(r, town)]
    snap = await load_pool(session, now=now, config=config)
    start = (filters.page - 1) * per_page
    chunk = rows[start : start + per_page]
    return PoolPage(
        [(r, snap.pool.get(r.key)) for r in chunk], len(rows), filters.page, start + per_page < len(rows)
    )


async def get_resource_for(session: AsyncSession, *, staff: Staff, key: str) -> Resource | None:
    row = (await session.exec(select(Resource).where(Resource.key == key))).first()
    return row if row is not None and can_see(staff, row) else None


@dataclass(slots=True)
class ResourceHistory:
    offers: list[tuple[Offer, Case]]
    engine: EngineResource | None
    average_rating: float | None


async def resource_history(
    session: AsyncSession,
    *,
    resource: Resource,
    now: datetime,
    config: PoolConfig = DEFAULT_CONFIG,
    limit: int = 50,
) -> ResourceHistory:
    stmt = (
        select(Offer, Case)
        .join(Case, col(Case.id) == Offer.case_id)
        .where(Offer.resource_id == resource.id)
        .order_by(col(Offer.offered_at).desc())
        .limit(limit)
    )
    rows = [(o, c) for o, c in (await session.exec(stmt)).all()]
    snap = await load_pool(session, now=now, config=config)
    avg = resource.rating_sum / resource.rating_count if resource.rating_count else None
    return ResourceHistory(rows, snap.pool.get(resource.key), avg)


EDITABLE = (
    "name",
    "contact",
    "phone",
    "categories",
    "items",
    "home_town",
    "towns_served",
    "capacity_open",
    "capacity_month",
    "max_fund",
    "available",
    "kind",
    "community_id",
)


async def allowed_categories(session: AsyncSession) -> list[str]:
    names = (
        await session.exec(
            select(Category.name)
            .where(Category.kind == "micro_wish", col(Category.active))
            .order_by(col(Category.sort))
        )
    ).all()

    return list(names) or list(CATEGORIES)


async def update_resource(
    session: AsyncSession, *, staff: Staff, resource: Resource, values: dict[str, str], now: datetime
) -> dict[str, str]:
    """Edit from the staff form. Returns problems by field (nothing is saved when there is any)."""
    if not can_edit(staff, resource):
        raise PoolError("只能修改本镇街的爱心资源")
    errors: dict[str, str] = {}
    split = re.compile(r"[、,，;；/|\s]+")
    allowed = set(await allowed_categories(session))
    new: dict[str, Any] = {}
    name = values.get("name", "").strip()
    if not name:
        errors["name"] = "名称不能为空"
    new["name"] = name[:128]
    new["contact"] = values.get("contact", "").strip()[:64] or name[:64]
    phone = parse_phone_field(values.get("phone", ""))
    if phone is None:
        errors["phone"] = "电话号码格式不正确"
    new["phone"] = phone
    kind = values.get("kind", resource.kind)
    if kind not in KIND_LABELS:
        errors["kind"] = "请选择类型"
    new["kind"] = kind
    cats = [c for c in split.split(values.get("categories", "")) if c]
    if not cats or any(c not in allowed for c in cats):
        errors["categories"] = f"类别应为：{'、'.join(sorted(allowed))}"
    new["categories"] = sorted(set(cats))
    new["items"] = sorted({i for i in split.split(values.get("items", "")) if i})

    home = values.get("home_town", "").strip()
    if towns.get(home) is None:
        errors["home_town"] = "请选择正确的镇街"
    new["home_town"] = town_name(home)

    if staff.role not in CITY_ROLES and new["home_town"] != staff.town:
        errors["home_town"] = "只能设为本镇街"
    raw_id = values.get("community_id", "").strip()  # from the town's list (the registry), or none
    community = None
    if raw_id and raw_id.isascii() and raw_id.isdigit() and len(raw_id) < 10:
        community = await session.get(Community, int(raw_id))
    if raw_id and (community is None or not community.active or community.town != new["home_town"]):
        errors["community_id"] = f"请从{new['home_town'] or '所在镇街'}的村（社区）名单中选择"
    new["community_id"] = community.id if community is not None else None
    served = [t for t in split.split(values.get("towns_served", "")) if t]
    if CITY_WIDE in served:
        new["towns_served"] = []
    else:
        bad = [t for t in served if towns.get(t) is None]
        if bad:
            errors["towns_served"] = f"未知镇街：{'、'.join(bad)}"
        new["towns_served"] = sorted({town_name(t) for t in served} or {new["home_town"]})
    for name_ in ("capacity_open", "capacity_month"):
        raw = values.get(name_, "").strip()
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or int(raw) > 1000:
            errors[name_] = "应为0至1000的整数"
        else:
            new[name_] = int(raw)
    fund = values.get("max_fund", "").strip()
    fund_ok = fund.isascii() and fund.isdigit() and len(fund) <= 9  # ASCII digits only: "²".isdigit() is True
    if fund and not fund_ok:
        errors["max_fund"] = "应为不超过9位的整数（元）"
    new["max_fund"] = int(fund) if fund and fund_ok else None
    new["available"] = values.get("available") in ("1", "on", "true")
    if errors:
        return errors
    for k, v in new.items():
        setattr(resource, k, v)
    resource.updated_at = now
    session.add(resource)
    await session.flush()
    POOL_CACHE.clear()
    return {}


async def set_active(
    session: AsyncSession, *, staff: Staff, resource: Resource, active: bool, now: datetime
) -> None:
    if not can_edit(staff, resource):
        raise PoolError("只能停用本镇街的爱心资源")
    resource.active = active
    resource.updated_at = now
    session.add(resource)
    await session.flush()
    POOL_CACHE.clear()
    if not active and resource.id is not None:  # its pending invitations pass to the next candidate
        await withdraw_inactive(session, resource_id=resource.id, now=now)
        POOL_CACHE.clear()
