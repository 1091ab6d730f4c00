"""Test data for the resource-pool tests (imported by test_offers*, test_pool_*, test_volunteer*)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from bot.cases.access import create_staff
from bot.cases.numbering import create_case
from bot.models import Case, Resident, Resource, Staff

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Dongguan
PASSWORD = "Passw0rd!x"
TOWN, OTHER = "厚街镇", "虎门镇"


async def mk_resource(
    db,
    key: str,
    *,
    town: str = TOWN,
    categories=("助残",),
    items=("轮椅",),
    openid: str | None = None,
    served: list[str] | None = None,
    capacity_open: int = 2,
    capacity_month: int = 4,
    accepts: int = 0,
    declines: int = 0,
    name: str | None = None,
    active: bool = True,
    phone: str = "13800001111",
) -> Resource:
    r = Resource(
        key=key,
        kind="individual",
        name=name or f"志愿者{key}",
        contact=name or f"联系人{key}",
        phone=phone,
        openid=openid,
        categories=list(categories),
        items=list(items),
        home_town=town,
        towns_served=served if served is not None else [town],
        capacity_open=capacity_open,
        capacity_month=capacity_month,
        accepts=accepts,
        declines=declines,
        active=active,
        created_at=NOW,
        updated_at=NOW,
    )
    db.add(r)
    await db.flush()
    return r


async def mk_wish(
    db,
    *,
    town: str = TOWN,
    category: str = "助残",
    item: str | None = "轮椅",
    status: str = "claimed",
    owner: int | None = None,
    resident_openid: str | None = None,
    phone: str = "13912345678",
    now: datetime = NOW,
) -> Case:
    r = Resident(openid=resident_openid or f"o-res-{os.urandom(4).hex()}", phone=phone)
    db.add(r)
    await db.flush()
    c = await create_case(
        db,
        kind="micro_wish",
        description="家里老人腿脚不便，需要一辆轮椅",
        town=town,
        resident_id=r.id,
        community="新围社区",
        category=category,
        item=item,
        address="新围村三巷8号",
        beneficiary="陈伯",
        contact_phone=phone,
        now=now,
    )
    c.status = status
    c.claimed_by_id = owner
    await db.flush()
    return c


async def mk_staff(
    db, username: str, role: str = "town_staff", town: str | None = TOWN, openid: str | None = None
) -> Staff:
    s = await create_staff(
        db,
        username=username,
        password=PASSWORD,
        role=role,
        town=town,
        community="新围社区" if role == "community_worker" else None,
        display_name=username,
    )
    if openid:
        s.openid = openid
        await db.flush()
    return s
