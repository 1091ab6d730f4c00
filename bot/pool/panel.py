"""The pool panel of the staff case page: the top candidates with every score component, the offers so far, and
whether this staff member may send offers now."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import CITY_ROLES, STATE_LABEL, TOWN_WORKERS
from bot.models import Case, Staff
from bot.pool.config import DEFAULT_CONFIG, MATCHED, OFFER_LABEL, OPEN_WISH_STATES, PoolConfig
from bot.pool.records import CASE_OVER, case_offers
from bot.pool.snapshot import load_pool, wish_for
from matching.model import COMPONENT_LABELS, KIND_LABELS
from reference.privacy import mask_phone


async def candidates_panel(
    session: AsyncSession,
    *,
    case: Case,
    staff: Staff,
    now: datetime,
    config: PoolConfig = DEFAULT_CONFIG,
    limit: int = 5,
    has_offers: bool = True,
) -> dict[str, Any]:
    """Context for ``pool/_candidates.html`` on the staff case page: top candidates with every score component,
    the offers so far, and whether this staff member may send offers now. ``has_offers=False``: the caller knows
    the case has none (the case page's probe), so they are not read."""
    panel: dict[str, Any] = {
        "case_no": case.case_no,
        "applicable": case.kind == "micro_wish",
        "candidates": [],
        "offers": [],
        "can_offer": False,
        "can_invite": False,
        "reason": "",
        "flag": case.flag,
        "labels": COMPONENT_LABELS,
        "exclusions": [],
    }
    if case.kind != "micro_wish":
        return panel
    may = staff.role in TOWN_WORKERS | CITY_ROLES
    over = case.status in CASE_OVER
    wish = wish_for(case)
    snap = await load_pool(session, now=now, config=config)
    rows = await case_offers(session, case.id or 0) if has_offers else []
    for o in rows:
        key = snap.keys.get(o.resource_id)
        res = snap.rows.get(key or "")
        ended = (
            over and o.status == "offered"
        )  # an invitation left over from before offers ended with the case
        panel["offers"].append(
            {
                "id": o.id,
                "name": res.name if res else "?",
                "key": key,
                "status": "ended" if ended else o.status,
                "status_label": "已结束" if ended else OFFER_LABEL.get(o.status, o.status),
                "deadline": o.deadline,
                "percent": round((o.score or 0) * 100),
                "bound": bool(res and res.openid),
                # donors without WeChat are phoned: the number masked here, in full only through the audited reveal
                "phone": mask_phone(res.phone) if res and not res.openid else "",
                "actionable": may and not over and o.status == "offered",
            }
        )
    if over:
        panel["reason"] = f"诉求{STATE_LABEL.get(case.status, case.status)}，不再邀请爱心资源"
        return panel
    matched = any(o.status in MATCHED for o in rows)
    pending = any(o.status == "offered" for o in rows)
    if wish is None:
        panel["reason"] = "请先为诉求选择类别"
        return panel
    ranked = snap.pool.rank(
        wish,
        weights=config.weights,
        limit=limit,
        exclude={snap.keys[o.resource_id] for o in rows if o.resource_id in snap.keys},
    )
    for c in ranked:
        res = snap.rows[c.key]
        eng = snap.pool.get(c.key)
        panel["candidates"].append(
            {
                "key": c.key,
                "name": res.name,
                "kind": KIND_LABELS.get(res.kind, res.kind),
                "town": res.home_town,
                "phone": eng.masked_phone if eng else "",
                "percent": c.percent,
                "components": [(label, round(value * 100)) for label, value in c.labelled()],
                "reasons": c.reasons,
                "bound": bool(res.openid),
            }
        )
    if not ranked:
        panel["exclusions"] = snap.pool.exclusion_summary(wish).most_common(3)
    # one person may be invited while another invitation waits; a new cascade only when none waits
    panel["can_invite"] = may and not matched and case.status in OPEN_WISH_STATES and bool(ranked)
    if not may:
        panel["reason"] = "您的身份不能派单"
    elif matched:
        panel["reason"] = "已有爱心人士认领"
    elif case.status not in OPEN_WISH_STATES:
        panel["reason"] = f"诉求当前状态为「{STATE_LABEL.get(case.status, case.status)}」"
    elif not ranked:
        panel["reason"] = "没有符合条件的爱心资源"
    elif pending:
        panel["reason"] = "邀请等待答复中；也可以单独邀请下面的人选"
    else:
        panel["can_offer"] = True
    return panel
