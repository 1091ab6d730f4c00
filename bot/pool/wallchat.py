"""圆梦墙 in chat: "看看心愿" lists a few open wishes near the sender with their links; a bound volunteer of the pool
may also say "我想认领" for the same list and claim one with "认领 <编号>" (the wish's public id) — the claim is the
wall's own (``bot.pool.wall.claim_wish``), made in the name of the volunteer's resource, so one match per wish and
the town's auto-confirm for trusted donors hold here too.

``wall_chat`` is the one function the dialogue calls (in its idle state, after the volunteers' router); it answers
None for every message that is not about the wall, and for "我想认领" from someone not in the pool (the dialogue
then records the offer of help as a lead)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Resource
from bot.pool.config import PoolError
from bot.pool.volunteers import volunteer_by_openid
from bot.pool.wall import DONOR_TYPES, PublicWish, WallError, check_claim_form, claim_wish, open_wishes
from reference import towns

BROWSE = ("看看心愿", "看心愿", "有什么心愿", "有哪些心愿", "心愿墙", "圆梦墙", "看看圆梦墙")
WANT = ("我想认领", "我要认领", "认领心愿", "想认领心愿", "我想认领心愿")
CLAIM = re.compile(r"^认领\s*[:：]?\s*([a-z0-9]{8})$")
_PUNCT = re.compile(r"[\s，。！!,.、~～？?]+")
LIST_SIZE = 3


def _near_towns(resource: Resource | None) -> list[str]:
    """The donor's towns, nearest first: the home town, the towns served, then the rest by distance."""
    if resource is None:
        return []
    home = towns.get(resource.home_town)
    served = [t for t in (resource.towns_served or []) if towns.get(t)]
    if home is None:
        return served
    rest = sorted((t for t in towns.TOWNS if t.name != home.name), key=lambda t: towns.distance_km(home, t))
    near = [t.name for t in rest if towns.distance_km(home, t) <= 15]
    return list(dict.fromkeys([home.name, *served, *near]))


async def _wishes_near(session: AsyncSession, resource: Resource | None, now: datetime) -> list[PublicWish]:
    out: list[PublicWish] = []
    for town in _near_towns(resource):
        found, _ = await open_wishes(session, now=now, town=town, per_page=LIST_SIZE - len(out))
        out += found
        if len(out) >= LIST_SIZE:
            return out
    if not out:
        out, _ = await open_wishes(session, now=now, per_page=LIST_SIZE)
    return out


async def wall_chat(
    session: AsyncSession, *, openid: str, text: str, now: datetime, settings: Any
) -> str | None:
    raw = _PUNCT.sub("", (text or "").strip()).lower()
    claim = CLAIM.match(_PUNCT.sub("", (text or "").strip().lower()))
    if raw not in BROWSE and raw not in WANT and claim is None:
        return None
    resource = await volunteer_by_openid(session, openid=openid)
    base = str(getattr(settings, "base_url", "")).rstrip("/")
    if claim is not None:
        if resource is None:
            return f"在微信里认领心愿需要先加入爱心资源库并绑定微信：{base}/donate\n也可以打开心愿页面直接认领：{base}/wall/{claim.group(1)}"
        return await _claim(session, resource=resource, public_id=claim.group(1), now=now, settings=settings)
    if raw in WANT and resource is None:
        return None  # an offer of help from someone new: the dialogue records it as a lead
    wishes = await _wishes_near(session, resource, now)
    if not wishes:
        return f"现在没有等待认领的心愿，谢谢您的关心！有新心愿时可以在这里看：{base}/wall"
    where = f"{resource.home_town}附近" if resource is not None else "全市"
    lines = [f"{where}等待认领的心愿："]
    for i, w in enumerate(wishes, 1):
        lines.append(f"{i}. {w.text}（{w.town}，已等待{w.waited_days}天）{base}/wall/{w.public_id}")
    if resource is not None:
        lines.append(f"想认领哪一个，回复“认领 编号”，例如“认领 {wishes[0].public_id}”。")
    else:
        lines.append(f"点开链接就能认领。加入爱心资源库后还可以在微信里直接认领：{base}/donate")
    lines.append(f"更多心愿：{base}/wall")
    return "\n".join(lines)


async def _claim(
    session: AsyncSession, *, resource: Resource, public_id: str, now: datetime, settings: Any
) -> str:
    base = str(getattr(settings, "base_url", "")).rstrip("/")
    hours = float(getattr(settings, "wall_reserve_hours", 48.0) or 48.0)
    try:
        form = check_claim_form(
            donor_name=resource.name,
            donor_type=resource.kind if resource.kind in DONOR_TYPES else "individual",
            phone=resource.phone or "",
            message="",
        )
        async with session.begin_nested():
            c = await claim_wish(
                session,
                public_id=public_id,
                form=form,
                now=now,
                hold=timedelta(hours=hours),
                resource_id=resource.id,
            )
    except WallError as exc:
        return f"{exc}\n更多心愿：{base}/wall"
    except PoolError as exc:
        return str(exc)
    page = f"{base}/wall/claims/{c.token}"
    if c.status == "confirmed":
        return f"认领成功！您是可信爱心资源，已自动确认。送到哪里、联系谁请看：{page}"
    return f"已为您保留这个心愿，工作人员确认后会告诉您送到哪里、找谁。进度请看：{page}"
