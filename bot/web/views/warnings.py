"""事件预警 in the staff view: today's spikes, clusters and repeat requesters of the staff member's town (city roles:
every town), each with its cases; a cluster merges into one case with one click (the case kept chosen on the form),
recorded on every timeline and told to the residents (bot/cases/merging.py)."""

from __future__ import annotations

from collections import defaultdict

from aiohttp import web

from bot import keys
from bot.cases.actors import CITY_ROLES, Actor
from bot.cases.merging import merge_cluster
from bot.cases.table import LifecycleError
from bot.db import transaction
from bot.models import Staff
from bot.reporting.warnings import early_warnings
from bot.web.auth import require_staff
from bot.web.params import ParamError, parse_case_no
from bot.web.views.common import csrf_form, flash_redirect, now_of
from bot.web.views.staff import render

routes = web.RouteTableDef()
KIND_TITLE = {
    "cluster": "同类微实事集中（建议合并）",
    "spike": "某类诉求明显增多",
    "repeat": "同一居民多次提交",
}


def _town_level(staff: Staff) -> None:
    """Warnings span a whole town: town staff and city roles, not a community's worker."""
    if staff.role == "community_worker":
        raise web.HTTPForbidden(text="事件预警由镇街工作人员处理")


@routes.get("/staff/warnings", name="staff_warnings")
@require_staff()
async def warnings_page(request: web.Request, staff: Staff) -> web.Response:
    _town_level(staff)
    async with request.app[keys.SESSIONS]() as db:
        found = await early_warnings(db, now=now_of(request))
    town = None if staff.role in CITY_ROLES else staff.town
    groups: dict[str, list[object]] = defaultdict(list)
    for w in found:
        if town is None or w.town == town:
            groups[w.kind].append(w)
    ordered = [(kind, KIND_TITLE[kind], groups[kind]) for kind in KIND_TITLE if groups.get(kind)]
    return await render(request, "staff/warnings.html", {"groups": ordered, "town": town})


@routes.post("/staff/warnings/merge", name="staff_warnings_merge")
@require_staff()
async def warnings_merge(request: web.Request, staff: Staff) -> web.Response:
    _town_level(staff)
    form = await csrf_form(request)
    back = request.app.router["staff_warnings"].url_for()
    try:
        numbers = [parse_case_no(v) for v in form.getall("case_no", [])][:30]
        keep = parse_case_no(form.get("keep", ""), field="保留的诉求")
    except ParamError as exc:
        await flash_redirect(request, back, str(exc), "error")
    note = str(form.get("note", "")).strip()[:200]
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            kept, merged = await merge_cluster(
                db, case_nos=numbers, keep=keep, actor=Actor.of_staff(staff), note=note, now=now_of(request)
            )
    except LifecycleError as exc:
        await flash_redirect(request, back, str(exc), "error")
    target = request.app.router["staff_case"].url_for(case_no=kept.case_no)
    await flash_redirect(
        request, target, f"已把{'、'.join(c.case_no for c in merged)}合并到{kept.case_no}，居民会收到通知"
    )
