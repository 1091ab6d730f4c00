"""圆梦墙 group claims and trusted donors.

A group claim: an enterprise, organisation or party branch (党支部) claims several open wishes with one form. Each
wish is reserved on its own (a savepoint per wish, the same conditional UPDATE as a single claim), so a wish someone
else took meanwhile is reported as taken while the others stay reserved; the wishes are taken in case-id order, the
order every claim locks case rows in, so two group claims over overlapping wishes never deadlock and each wish goes
to exactly one of them.

Trusted donors: staff mark a pool resource trusted, and a town may choose to confirm trusted donors' claims at once
(``bot.pool.wall.auto_confirms``); both changes are written to the audit log."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.access import audit
from bot.cases.lifecycle import CITY_ROLES
from bot.delivery.outbox import enqueue
from bot.models import Resource, Staff, TownWallSetting, WallClaim, WallWish
from bot.pool.snapshot import POOL_CACHE
from bot.pool.wall import DONOR_TYPES, ClaimForm, WallError, claim_wish, town_staff

GROUP_TYPES = ("enterprise", "organisation", "party_branch")
GROUP_MAX = 20
_PUBLIC_ID = re.compile(r"[a-z0-9]{8}")


@dataclass(slots=True)
class GroupResult:
    token: str
    claimed: list[tuple[str, WallClaim]] = field(default_factory=list)  # (public id, claim)
    taken: list[tuple[str, str]] = field(default_factory=list)  # (public id, why not)


def check_group_ids(raw: list[str]) -> list[str]:
    """The wishes ticked on the form: 1 to GROUP_MAX distinct public ids (the view's route pattern shape)."""
    ids = list(dict.fromkeys(x.strip() for x in raw if x.strip()))
    if not ids:
        raise WallError("请至少勾选一个心愿")
    if len(ids) > GROUP_MAX:
        raise WallError(f"一次最多认领{GROUP_MAX}个心愿")
    if not all(_PUBLIC_ID.fullmatch(x) for x in ids):
        raise WallError("所选心愿编号不正确，请刷新页面后重新勾选")
    return ids


async def claim_group(
    session: AsyncSession,
    *,
    public_ids: list[str],
    form: ClaimForm,
    now: datetime,
    hold: timedelta,
    resource_id: int | None = None,
    listed: bool = False,
) -> GroupResult:
    """Claim several wishes for one organisation; every wish is reserved or reported, never half of one."""
    if form.donor_type not in GROUP_TYPES:
        raise WallError("多个心愿一起认领请选择爱心企业、社会组织或党支部")
    rows = (
        await session.exec(
            select(WallWish.public_id, WallWish.case_id).where(col(WallWish.public_id).in_(public_ids))
        )
    ).all()
    known: dict[str, int] = dict(rows)  # public id -> case id
    result = GroupResult(token=secrets.token_urlsafe(24))
    for pid in public_ids:
        if pid not in known:
            result.taken.append((pid, "找不到这个心愿"))
    for pid in sorted(known, key=lambda p: known[p]):  # one lock order for every claimer: case id
        try:
            async with session.begin_nested():
                c = await claim_wish(
                    session,
                    public_id=pid,
                    form=form,
                    now=now,
                    hold=hold,
                    resource_id=resource_id,
                    group_token=result.token,
                    listed=listed,
                    notify=False,
                )
        except WallError as exc:
            result.taken.append((pid, str(exc)))
            continue
        result.claimed.append((pid, c))
    await _tell_staff(session, result=result, form=form, now=now)
    order = {pid: i for i, pid in enumerate(public_ids)}
    result.claimed.sort(key=lambda x: order[x[0]])
    result.taken.sort(key=lambda x: order[x[0]])
    return result


async def _tell_staff(session: AsyncSession, *, result: GroupResult, form: ClaimForm, now: datetime) -> None:
    """One message per town's staff member for the whole group claim (not one for each wish)."""
    by_town: dict[str, list[WallClaim]] = {}
    for _, c in result.claimed:
        w = await session.get(WallWish, c.wish_id)
        if w is not None:
            by_town.setdefault(w.town, []).append(c)
    label = DONOR_TYPES[form.donor_type]
    for town, claims in by_town.items():
        auto = sum(1 for c in claims if c.auto_confirmed)
        waiting = len(claims) - auto
        todo = f"{waiting}个等待确认，请在圆梦墙认领页面处理" if waiting else "已全部按本镇设置自动确认"
        for s in await town_staff(session, town):
            await enqueue(
                session,
                openid=s.openid or "",
                recipient_type="staff",
                kind="alert",
                text=f"{label}「{form.donor_name}」在圆梦墙一次认领了{town}的{len(claims)}个心愿，{todo}。",
                template={"status": "圆梦墙一起认领"},
                dedupe_key=f"wall-group:{result.token[:16]}:{town}:{s.id}",
                now=now,
            )


# ------------------------------------------------------------------ trusted donors and the town's setting
async def set_trusted(
    session: AsyncSession, *, resource: Resource, trusted: bool, staff: Staff, now: datetime, ip: str | None
) -> None:
    """Staff of the resource's town (or the city) mark a donor trusted or not; audited."""
    if staff.role not in CITY_ROLES and staff.town != resource.home_town:
        raise WallError("只能设置本镇街的爱心资源")
    if staff.role not in CITY_ROLES and staff.role not in ("town_staff", "town_supervisor"):
        raise WallError("只有镇街工作人员可以设置可信爱心资源")
    resource.trusted = trusted
    resource.updated_at = now
    session.add(resource)
    POOL_CACHE.clear()
    await audit(
        session,
        staff=staff,
        action="pool_trusted",
        now=now,
        detail=f"{resource.key}「{resource.name}」{'设为可信' if trusted else '取消可信'}",
        ip=ip,
    )


async def town_setting(session: AsyncSession, *, town: str) -> TownWallSetting | None:
    return await session.get(TownWallSetting, town)


async def set_town_auto_confirm(
    session: AsyncSession, *, town: str, on: bool, staff: Staff, now: datetime, ip: str | None
) -> TownWallSetting:
    """A town's supervisor (or the city) decides whether trusted donors' claims are confirmed at once; audited."""
    if staff.role not in CITY_ROLES and (staff.role != "town_supervisor" or staff.town != town):
        raise WallError("只有本镇街的负责人可以修改这项设置")
    row = await session.get(TownWallSetting, town) or TownWallSetting(town=town)
    row.auto_confirm_trusted = on
    row.updated_at = now
    row.updated_by_id = staff.id
    session.add(row)
    await session.flush()
    await audit(
        session,
        staff=staff,
        action="wall_town_setting",
        now=now,
        detail=f"{town}：可信爱心资源的认领{'自动确认' if on else '由工作人员确认'}",
        ip=ip,
    )
    return row
