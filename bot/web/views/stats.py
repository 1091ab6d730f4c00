"""数据统计 and 档案留存 for staff, the notices editor (信息发布) and the audit log (操作日志).

The jurisdiction comes from the signed-in staff member (`bot.reporting.scope.scope_for`): a town's staff get their town's
figures whatever `?town=` says; city roles choose any town or the whole city. Exports are audit-logged."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot import keys
from bot.cases.access import audit
from bot.cases.lifecycle import CITY_ROLES, SUPERVISORS
from bot.cases.numbering import CHANNELS, CHINA
from bot.db import transaction
from bot.models import Staff
from bot.pool.walldonor import wall_by_town, wall_figures
from bot.reporting.archive import archive_workbook
from bot.reporting.audit import ACTION_GROUPS, ACTION_LABELS, AuditFilter, audit_log, audit_staff
from bot.reporting.figures import dashboard
from bot.reporting.notices import (
    NoticeError,
    delete_notice,
    get_notice_for,
    notices_for_staff,
    save_notice,
)
from bot.reporting.policycount import policy_count
from bot.reporting.scope import TOWN_NAMES, Scope, scope_for
from bot.reporting.workbook import stats_workbook
from bot.web.auth import require_staff
from bot.web.params import (
    MAX_ID,
    ParamError,
    optional_int,
    parse_choice,
    parse_date,
    parse_int_id,
    parse_page,
)
from bot.web.views.common import client_ip, csrf_form, flash_redirect
from bot.web.views.common import now_of as _now
from bot.web.views.staff import render

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ARCHIVE_ROLES = SUPERVISORS  # the archive holds personal data: supervisors only
MAX_RANGE_DAYS = 3 * 366


# ------------------------------------------------------------------ filters
def date_range(query: Any, *, now: datetime) -> tuple[date, date, datetime, datetime]:
    """`from`/`to` as China-time dates (both inclusive; default: this month so far) → UTC [start, end).

    Parsed strictly (`bot.web.params.parse_date`): a malformed or out-of-range date, `from` after `to`, or a range
    longer than three years is a `ParamError` — a 400 page that says which — never a guess and never a 500."""
    today = now.astimezone(CHINA).date()
    given_first = parse_date(query.get("from"), field="开始日期")
    given_last = parse_date(query.get("to"), field="结束日期")
    last = given_last or today
    first = given_first or last.replace(day=1)  # only `to` given: from the first of that month
    if last < first:
        raise ParamError("开始日期不能晚于结束日期", field="开始日期")
    if (last - first).days > MAX_RANGE_DAYS:
        raise ParamError("查询的时间范围最长三年，请缩短时间范围", field="开始日期")
    start = datetime(first.year, first.month, first.day, tzinfo=CHINA)
    end = datetime(last.year, last.month, last.day, tzinfo=CHINA) + timedelta(days=1)
    return first, last, start, end


def town_param(query: Any) -> str | None:
    """`?town=`: empty for all, else one of the 33 towns (an unknown name is a 400, never silently the city)."""
    town = parse_choice(query.get("town"), ("", *TOWN_NAMES), default="", field="镇街")
    return town or None


def _scope(staff: Staff, query: Any) -> Scope:
    return scope_for(
        role=staff.role,
        own_town=staff.town,
        own_community=staff.community,
        requested_town=town_param(query),
    )


def _filename(prefix: str, scope: Scope, first: date, last: date, now: datetime) -> str:
    """``统计_厚街镇_20260301-20260331_导出20260402.xlsx``: every date in it is a China date (the range the staff
    chose, and the day of the export — at 02:00 in Dongguan the UTC date is still yesterday's)."""
    made = now.astimezone(CHINA)
    return f"{prefix}_{scope.town or '全市'}_{first:%Y%m%d}-{last:%Y%m%d}_导出{made:%Y%m%d}.xlsx"


def _attachment(body: bytes, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type=XLSX,
        headers={
            "Content-Disposition": f"attachment; filename=\"export.xlsx\"; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store",
        },
    )


def _scope_label(scope: Scope) -> str:
    if scope.town is None:
        return "全市"
    return scope.town + (f" · {scope.community}" if scope.community else "")


# ------------------------------------------------------------------ the dashboard
@routes.get("/staff/stats", name="staff_stats")
@require_staff()
async def stats_page(request: web.Request, staff: Staff) -> web.Response:
    now = _now(request)
    first, last, start, end = date_range(request.query, now=now)
    scope = _scope(staff, request.query)
    async with request.app[keys.SESSIONS]() as db:
        d = await dashboard(db, scope=scope, start=start, end=end, now=now)
        wall = await wall_figures(db, town=scope.town)
        policies = await policy_count(db, town=scope.town, start=start, end=end)
        wall_towns = [row for row in await wall_by_town(db) if scope.town is None or row[0] == scope.town]
    query = {
        "from": first.isoformat(),
        "to": last.isoformat(),
        **({"town": scope.town} if scope.town else {}),
    }
    ctx = {
        "d": d,
        "wall": wall,
        "policies": policies,
        "wall_towns": wall_towns,
        "first": first,
        "last": last,
        "scope_label": _scope_label(scope),
        "city": staff.role in CITY_ROLES,
        "towns": TOWN_NAMES,
        "CHANNELS": CHANNELS,
        "query": query,
        "can_archive": staff.role in ARCHIVE_ROLES,
        "score_rows": sorted(d.satisfaction.distribution.items(), reverse=True),
        "SCORE_LABEL": {i: f"{i}分" for i in range(1, 6)},
        "max_of": lambda rows: max([r[1] for r in rows] or [1]) or 1,
        "pct": lambda v: f"{v * 100:.1f}%" if v is not None else "—",
    }
    return await render(request, "stats/dashboard.html", ctx)


@routes.post("/staff/stats/export.xlsx", name="staff_stats_export")
@require_staff()
async def stats_export(request: web.Request, staff: Staff) -> web.Response:
    """The statistics workbook. A POST form with CSRF, because it writes an audit row: a link another site
    plants (a cross-site GET) can neither download it nor add entries to the log."""
    form = await csrf_form(request)
    now = _now(request)
    first, last, start, end = date_range(form, now=now)
    scope = _scope(staff, form)
    async with request.app[keys.SESSIONS]() as db:
        d = await dashboard(db, scope=scope, start=start, end=end, now=now)
    body = stats_workbook(d)
    async with transaction(request.app[keys.SESSIONS]) as db:
        await audit(
            db,
            staff=staff,
            action="stats_export",
            now=now,
            detail=f"导出统计 {_scope_label(scope)} {first}~{last}",
            ip=client_ip(request),
        )
    return _attachment(body, _filename("统计", scope, first, last, now))


@routes.post("/staff/archive.xlsx", name="staff_archive_export")
@require_staff(ARCHIVE_ROLES)
async def archive_export(request: web.Request, staff: Staff) -> web.Response:
    """档案留存: the cases created in the range with their whole timelines. Phones masked unless admin. A POST
    form with CSRF (it writes an audit row), like the statistics workbook."""
    form = await csrf_form(request)
    now = _now(request)
    first, last, start, end = date_range(form, now=now)
    scope = _scope(staff, form)
    full_phone = staff.role == "admin"
    async with request.app[keys.SESSIONS]() as db:
        try:
            body, n = await archive_workbook(db, scope=scope, start=start, end=end, full_phone=full_phone)
        except ValueError as exc:
            raise ParamError(str(exc)) from None
    async with transaction(request.app[keys.SESSIONS]) as db:
        await audit(
            db,
            staff=staff,
            action="archive_export",
            now=now,
            detail=(
                f"导出档案 {_scope_label(scope)} {first}~{last} 共{n}件"
                f"{'（含完整电话）' if full_phone else '（电话已脱敏）'}"
            ),
            ip=client_ip(request),
        )
    log.info("archive export by staff %s: %d cases", staff.id, n)
    return _attachment(body, _filename("档案", scope, first, last, now))


# ------------------------------------------------------------------ notices (信息发布)
def _day(dt: datetime) -> str:
    return dt.astimezone(CHINA).strftime("%Y-%m-%d")


def _notices_ctx(rows: Any, form: Any, *, error: str | None = None, editing: Any = None) -> dict[str, Any]:
    return {"rows": rows, "form": form, "error": error, "editing": editing, "towns": TOWN_NAMES, "day": _day}


def _notice_form(form: Any) -> dict[str, str]:
    return {
        "title": str(form.get("title", ""))[:200],
        "body": str(form.get("body", ""))[:20_000],
        "town": str(form.get("town", ""))[:16],
    }


@routes.get("/staff/notices", name="staff_notices")
@require_staff(SUPERVISORS)
async def notices_page(request: web.Request, staff: Staff) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        rows = await notices_for_staff(db, staff=staff)
    ctx = _notices_ctx(rows, {"town": staff.town or ""})
    return await render(request, "stats/notices.html", ctx)


@routes.post("/staff/notices", name="staff_notice_create")
@require_staff(SUPERVISORS)
async def notice_create(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    data = _notice_form(form)
    now = _now(request)
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            notice = await save_notice(
                db, staff=staff, title=data["title"], body=data["body"], town=data["town"] or None, now=now
            )
            await audit(
                db, staff=staff, action="notice_publish", now=now, detail=notice.title, ip=client_ip(request)
            )
    except NoticeError as exc:
        async with request.app[keys.SESSIONS]() as db:
            rows = await notices_for_staff(db, staff=staff)
        ctx = _notices_ctx(rows, data, error=str(exc))
        return await render(request, "stats/notices.html", ctx, status=400)
    await flash_redirect(request, request.app.router["staff_notices"].url_for(), "公告已发布")


def _notice_id(request: web.Request) -> int:
    try:
        return parse_int_id(request.match_info["notice_id"], field="公告编号")
    except ParamError:  # a path that names no notice: not found, never a 500
        raise web.HTTPNotFound() from None


@routes.get("/staff/notices/{notice_id}/edit", name="staff_notice_edit")
@require_staff(SUPERVISORS)
async def notice_edit_form(request: web.Request, staff: Staff) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        notice = await get_notice_for(db, staff=staff, notice_id=_notice_id(request))
        if notice is None:
            raise web.HTTPNotFound()
        rows = await notices_for_staff(db, staff=staff)
    form = {"title": notice.title, "body": notice.body, "town": notice.town or ""}
    ctx = _notices_ctx(rows, form, editing=notice)
    return await render(request, "stats/notices.html", ctx)


@routes.post("/staff/notices/{notice_id}/edit", name="staff_notice_update")
@require_staff(SUPERVISORS)
async def notice_update(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    data = _notice_form(form)
    now = _now(request)
    notice_id = _notice_id(request)
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            notice = await get_notice_for(db, staff=staff, notice_id=notice_id)
            if notice is None:
                raise web.HTTPNotFound()
            if form.get("delete") == "1":
                await delete_notice(db, staff=staff, notice=notice)
                await audit(
                    db,
                    staff=staff,
                    action="notice_delete",
                    now=now,
                    detail=notice.title,
                    ip=client_ip(request),
                )
                message = "公告已删除"
            else:
                await save_notice(
                    db,
                    staff=staff,
                    notice=notice,
                    title=data["title"],
                    body=data["body"],
                    town=data["town"] or None,
                    now=now,
                )
                await audit(
                    db, staff=staff, action="notice_edit", now=now, detail=notice.title, ip=client_ip(request)
                )
                message = "公告已修改"
    except NoticeError as exc:
        async with request.app[keys.SESSIONS]() as db:
            rows = await notices_for_staff(db, staff=staff)
            editing = await get_notice_for(db, staff=staff, notice_id=notice_id)
        ctx = _notices_ctx(rows, data, error=str(exc), editing=editing)
        return await render(request, "stats/notices.html", ctx, status=400)
    await flash_redirect(request, request.app.router["staff_notices"].url_for(), message)


# ------------------------------------------------------------------ the audit log (操作日志)
def audit_filter(query: Any, *, staff: Staff, now: datetime, choices: list[tuple[int, str]]) -> AuditFilter:
    """The audit page's filters, each parsed strictly (a bad value is a 400 page, never a guess)."""
    action = parse_choice(query.get("action"), ("", *ACTION_LABELS), default="", field="操作类型") or None
    staff_id = optional_int(query.get("staff"), field="工作人员", lo=1, hi=MAX_ID)
    if staff_id is not None and staff_id not in {i for i, _ in choices}:
        raise ParamError("没有这位工作人员，或不在您的管辖范围内", field="工作人员")
    town = town_param(query) if staff.role in CITY_ROLES else None
    start = end = None
    if query.get("from") or query.get("to"):
        _, _, start, end = date_range(query, now=now)
    return AuditFilter(action=action, staff_id=staff_id, town=town, start=start, end=end)


@routes.get("/staff/audit", name="staff_audit")
@require_staff(SUPERVISORS)
async def audit_page(request: web.Request, staff: Staff) -> web.Response:
    """Supervisors read who did what: Chinese labels, filters by action, staff member, town and dates."""
    now = _now(request)
    page = parse_page(request.query)
    async with request.app[keys.SESSIONS]() as db:
        choices = await audit_staff(db, viewer=staff)
        filters = audit_filter(request.query, staff=staff, now=now, choices=choices)
        result = await audit_log(db, viewer=staff, filters=filters, page=page)
    kept = {k: request.query[k] for k in ("action", "staff", "town", "from", "to") if request.query.get(k)}
    base = request.app.router["staff_audit"].url_for()
    ctx = {
        "rows": result.rows,
        "page": page,
        "prev_url": str(base.with_query({**kept, "page": str(page - 1)})) if page > 1 else None,
        "next_url": str(base.with_query({**kept, "page": str(page + 1)})) if result.has_next else None,
        "form": kept,
        "groups": ACTION_GROUPS,
        "staff_choices": choices,
        "city": staff.role in CITY_ROLES,
        "towns": TOWN_NAMES,
        "fmt": lambda dt: dt.astimezone(CHINA).strftime("%Y-%m-%d %H:%M"),
    }
    return await render(request, "staff/audit.html", ctx)
