"""微实事 projects at the HTTP edge for staff: the town's rounds and totals, a project's page (site visit with
photos, approval with funding, 公示 objections and answers, stages, acceptance), a round's page (the residents'
vote and the 联席会议), and a 微实事 case turned into a proposal.

Views parse (photos through ``bot.projects.photos``), authorise (a town's staff see only their town), call one
domain function of ``bot.projects`` and redirect with a flash message."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from bot import keys
from bot.cases.access import audit
from bot.cases.actors import CITY_ROLES, SUPERVISORS, Actor
from bot.cases.funds import parse_yuan, yuan
from bot.cases.table import LifecycleError
from bot.conversation.nlu.normalize import PROJECT_CATEGORIES
from bot.db import transaction
from bot.deadlines.workdays import CHINA
from bot.models import Staff
from bot.projects import service as svc
from bot.projects.figures import on_time, totals
from bot.projects.photos import MAX_PER_UPLOAD, PhotoError, check_and_store, read_photo, visibility
from bot.projects.tables import Project, ProjectRound
from bot.projects.votes import open_vote, results
from bot.reporting.scope import TOWN_NAMES
from bot.web.auth import current_staff, require_staff
from bot.web.params import ParamError, form_text, parse_choice, parse_date, parse_int, parse_int_id
from bot.web.views.common import case_or_404, client_ip, csrf_form, flash_redirect, fmt_time, now_of
from bot.web.views.staff import render
from reference.privacy import mask_text

routes = web.RouteTableDef()
ERRORS = (LifecycleError, ParamError, PhotoError)


def _town_of_view(request: web.Request, staff: Staff) -> str:
    if staff.role in CITY_ROLES:
        return parse_choice(
            request.query.get("town"), TOWN_NAMES, default=staff.town or TOWN_NAMES[0], field="镇街"
        )
    if not staff.town:
        raise web.HTTPForbidden(text="您的账号没有所属镇街")
    return staff.town


def _visible(staff: Staff, town: str) -> bool:
    return staff.role in CITY_ROLES or staff.town == town


async def _project(db: Any, staff: Staff, raw: str) -> Project:
    try:
        pid = parse_int_id(raw, field="项目编号")
    except ParamError:
        raise web.HTTPNotFound() from None
    row = await db.get(Project, pid)
    if row is None or not _visible(staff, row.town):
        raise web.HTTPNotFound()
    return row


async def _round(db: Any, staff: Staff, raw: Any) -> ProjectRound:
    try:
        rid = parse_int_id(raw, field="批次")
    except ParamError:
        raise web.HTTPNotFound() from None
    row = await db.get(ProjectRound, rid)
    if row is None or not _visible(staff, row.town):
        raise web.HTTPNotFound()
    return row


async def _photos(request: web.Request, form: MultiDictProxy[Any]) -> list[str]:
    """The uploaded photos of the form's ``photos`` field, checked and put in the media storage; names in upload
    order."""
    files = [f for f in form.getall("photos", []) if isinstance(f, web.FileField) and f.filename]
    if len(files) > MAX_PER_UPLOAD:
        raise PhotoError(f"一次最多上传{MAX_PER_UPLOAD}张照片")
    storage = request.app[keys.MEDIA].storage
    return [
        await check_and_store(
            f.file.read(), content_type=f.content_type, filename=f.filename, storage=storage
        )
        for f in files
    ]


def _project_url(request: web.Request, project_id: int | str | None) -> Any:
    return request.app.router["staff_project"].url_for(project_id=str(project_id))


def _day(dt: datetime | None) -> str:
    return dt.astimezone(CHINA).strftime("%Y-%m-%d") if dt else ""


def _instant(raw: Any) -> datetime | None:
    """A moment written into a project's history (ISO 8601 with its offset); None for anything else."""
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


# ------------------------------------------------------------------ the town's projects
@routes.get("/staff/projects", name="staff_projects")
@require_staff()
async def projects_page(request: web.Request, staff: Staff) -> web.Response:
    try:
        town = _town_of_view(request, staff)
    except ParamError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    async with request.app[keys.SESSIONS]() as db:
        by_town, rounds = await totals(db, town=town)
        projects = {r.id: await svc.projects_of_round(db, round_id=r.id or 0) for r, _ in rounds}
        waiting = await svc.cases_to_propose(db, town=town)
    return await render(
        request,
        "gov/projects.html",
        {
            "town": town,
            "towns": TOWN_NAMES if staff.role in CITY_ROLES else (town,),
            "town_totals": by_town.get(town),
            "rounds": rounds,
            "projects": projects,
            "status_label": svc.STATUS_LABEL,
            "source_label": svc.SOURCE_LABEL,
            "categories": PROJECT_CATEGORIES,
            "yuan": yuan,
            "waiting": waiting,
            "fmt": fmt_time,
        },
    )


@routes.post("/staff/projects", name="staff_projects_post")
@require_staff()
async def projects_post(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    now = now_of(request)
    url = request.app.router["staff_projects"].url_for()
    try:
        op = parse_choice(form.get("op"), ("round", "propose"), field="操作")
        actor = Actor.of_staff(staff)
        async with transaction(request.app[keys.SESSIONS]) as db:
            if op == "round":
                town = (
                    parse_choice(form.get("town"), TOWN_NAMES, field="镇街")
                    if staff.role in CITY_ROLES
                    else staff.town or ""
                )
                url = url.with_query(town=town)
                row = await svc.create_round(
                    db,
                    town=town,
                    name=form_text(form, "name", max_len=64, field="批次名称", required=True),
                    objection_days=parse_int(form.get("objection_days") or "5", field="公示期", lo=1, hi=30),
                    actor=actor,
                    now=now,
                )
                message = f"已建立批次「{row.name}」"
            else:
                round_ = await _round(db, staff, form.get("round_id"))
                url = url.with_query(town=round_.town)
                project = await svc.propose(
                    db,
                    round_=round_,
                    title=form_text(form, "title", max_len=64, field="项目名称", required=True),
                    summary=form_text(
                        form, "summary", max_len=1000, field="项目内容", required=True, multiline=True
                    ),
                    community=form_text(form, "community", max_len=64, field="村（社区）", required=True),
                    category=parse_choice(form.get("category"), PROJECT_CATEGORIES, field="类别"),
                    source=parse_choice(form.get("source"), ("staff", "consultation"), field="提案来源"),
                    actor=actor,
                    now=now,
                )
                await audit(
                    db,
                    staff=staff,
                    action="project_propose",
                    now=now,
                    detail=project.title,
                    ip=client_ip(request),
                )
                url = _project_url(request, project.id)
                message = f"已收集提案「{project.title}」"
    except ERRORS as exc:
        await flash_redirect(request, url, str(exc), "error")
    await flash_redirect(request, url, message)


@routes.post("/staff/cases/{case_no}/project", name="staff_case_project")
@require_staff()
async def case_to_project(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    now = now_of(request)
    case_url = request.app.router["staff_case"].url_for(case_no=request.match_info["case_no"])
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            case = await case_or_404(db, staff=staff, case_no=request.match_info["case_no"])
            round_ = await _round(db, staff, form.get("round_id"))
            project = await svc.propose(
                db,
                round_=round_,
                title=form_text(form, "title", max_len=64, field="项目名称", required=True),
                summary=form_text(
                    form, "summary", max_len=1000, field="项目内容", required=True, multiline=True
                ),
                community=form_text(form, "community", max_len=64, field="村（社区）", required=True),
                category=parse_choice(form.get("category"), PROJECT_CATEGORIES, field="类别"),
                source="chat",
                case=case,
                actor=Actor.of_staff(staff),
                now=now,
            )
            await audit(
                db,
                staff=staff,
                action="project_propose",
                case=case,
                now=now,
                detail=project.title,
                ip=client_ip(request),
            )
    except ERRORS as exc:
        await flash_redirect(request, case_url, str(exc), "error")
    await flash_redirect(request, _project_url(request, project.id), f"已转为微实事提案「{project.title}」")


# ------------------------------------------------------------------ one project
@routes.get("/staff/projects/{project_id}", name="staff_project")
@require_staff()
async def project_page(request: web.Request, staff: Staff) -> web.Response:
    now = now_of(request)
    async with request.app[keys.SESSIONS]() as db:
        project = await _project(db, staff, request.match_info["project_id"])
        round_ = await db.get(ProjectRound, project.round_id)
        stages = await svc.stages_of(db, project_id=project.id or 0)
        ctx: dict[str, Any] = {
            "p": project,
            "round": round_,
            "funding": await svc.funding_of(db, project_id=project.id or 0),
            "stages": stages,
            "objections": await svc.objections_of(db, project_id=project.id or 0),
            "votes": (await results(db, round_id=project.round_id)).get(project.id or 0, 0),
            "carry_rounds": (
                await svc.open_rounds(db, town=project.town, besides=project.round_id)
                if project.status == "proposed" and round_ is not None and round_.meeting_at is not None
                else []
            ),
        }
    spent = sum(s.spent_fen for s in stages)
    return await render(
        request,
        "gov/project.html",
        {
            **ctx,
            "spent": spent,
            "history": [(_day(_instant(h.get("at"))), h) for h in project.history if isinstance(h, dict)],
            "on_time": on_time(project),
            "notice_open": svc.notice_open(project, now),
            "status_label": svc.STATUS_LABEL,
            "source_label": svc.SOURCE_LABEL,
            "funding_label": svc.FUNDING_LABEL,
            "stage_names": svc.STAGES,
            "is_supervisor": staff.role in SUPERVISORS,
            "yuan": yuan,
            "fmt": fmt_time,
            "day": _day,
            "mask": mask_text,
            "min_due": (now.astimezone(CHINA).date() + timedelta(days=1)).isoformat(),
        },
    )


def _funding(form: MultiDictProxy[Any]) -> list[svc.FundingLine]:
    lines = []
    for source in svc.FUNDING_LABEL:
        raw = form_text(form, f"amount_{source}", max_len=20, field=svc.FUNDING_LABEL[source])
        if not raw:
            continue
        lines.append(
            svc.FundingLine(
                source=source,
                amount_fen=parse_yuan(raw),
                sponsor=form_text(form, "sponsor", max_len=64, field="赞助单位")
                if source == "sponsor"
                else "",
                sponsor_agreed=form.get("sponsor_public") == "1",
            )
        )
    return lines


@routes.post("/staff/projects/{project_id}", name="staff_project_post")
@require_staff()
async def project_post(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    now = now_of(request)
    ops = ("visit", "carry", "approve", "objection", "answer", "stage", "accept")
    try:
        op = parse_choice(form.get("op"), ops, field="操作")
    except ParamError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    url = _project_url(request, request.match_info["project_id"])
    try:
        actor = Actor.of_staff(staff)
        async with transaction(request.app[keys.SESSIONS]) as db:
            p = await _project(db, staff, request.match_info["project_id"])
            if op == "visit":
                await svc.visit(
                    db,
                    project=p,
                    notes=form_text(
                        form, "notes", max_len=2000, field="踏勘情况", required=True, multiline=True
                    ),
                    photos=await _photos(request, form),
                    actor=actor,
                    now=now,
                )
                message = "已记录现场踏勘"
            elif op == "carry":
                to_round = await _round(db, staff, form.get("round_id"))
                await svc.carry_over(db, project=p, to_round=to_round, actor=actor, now=now)
                message = f"已转入「{to_round.name}」"
            elif op == "approve":
                due = parse_date(form.get("due"), field="完成期限")
                if due is None:
                    raise ParamError("请填写完成期限", field="due")
                await svc.approve(
                    db,
                    project=p,
                    funding=_funding(form),
                    unit=form_text(form, "unit", max_len=64, field="实施单位", required=True),
                    due=due,
                    actor=actor,
                    now=now,
                )
                message = f"已批准立项，预算 {yuan(p.budget_fen)} 元，公示至 {fmt_time(p.notice_until)}"
            elif op == "objection":
                await svc.raise_objection(
                    db,
                    project=p,
                    text=form_text(
                        form, "text", max_len=500, field="异议内容", required=True, multiline=True
                    ),
                    channel="staff",
                    now=now,
                )
                message = "已登记异议"
            elif op == "answer":
                await svc.answer_objection(
                    db,
                    project=p,
                    objection_id=parse_int(form.get("objection_id"), field="异议", lo=1),
                    answer=form_text(
                        form, "answer", max_len=1000, field="答复", required=True, multiline=True
                    ),
                    actor=actor,
                    now=now,
                )
                message = "已答复异议"
            elif op == "stage":
                raw = form_text(form, "spent", max_len=20, field="本阶段支出")
                stage = await svc.add_stage(
                    db,
                    project=p,
                    name=parse_choice(form.get("name"), svc.STAGES, field="进度阶段"),
                    note=form_text(
                        form, "note", max_len=1000, field="进度说明", required=True, multiline=True
                    ),
                    photos=await _photos(request, form),
                    spent_fen=parse_yuan(raw) if raw else 0,
                    actor=actor,
                    now=now,
                )
                message = f"已登记进度：{stage.name}"
            else:
                await svc.accept(
                    db,
                    project=p,
                    note=form_text(
                        form, "note", max_len=1000, field="验收意见", required=True, multiline=True
                    ),
                    photos=await _photos(request, form),
                    actor=actor,
                    now=now,
                )
                message = "已验收，结果已公示"
            await audit(
                db,
                staff=staff,
                action=f"project_{op}",
                now=now,
                detail=f"{p.id} {p.title}",
                ip=client_ip(request),
            )
    except ERRORS as exc:
        await flash_redirect(request, url, str(exc), "error")
    await flash_redirect(request, url, message)


# ------------------------------------------------------------------ a round: vote and 联席会议
@routes.get("/staff/projects/rounds/{round_id}", name="staff_project_round")
@require_staff()
async def round_page(request: web.Request, staff: Staff) -> web.Response:
    now = now_of(request)
    async with request.app[keys.SESSIONS]() as db:
        round_ = await _round(db, staff, request.match_info["round_id"])
        projects = await svc.projects_of_round(db, round_id=round_.id or 0)
        votes = await results(db, round_id=round_.id or 0)
    return await render(
        request,
        "gov/round.html",
        {
            "round": round_,
            "projects": projects,
            "votes": votes,
            "status_label": svc.STATUS_LABEL,
            "is_supervisor": staff.role in SUPERVISORS,
            "fmt": fmt_time,
            "default_close": (now.astimezone(CHINA).date() + timedelta(days=7)).isoformat(),
        },
    )


@routes.post("/staff/projects/rounds/{round_id}", name="staff_project_round_post")
@require_staff()
async def round_post(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    now = now_of(request)
    url = request.app.router["staff_project_round"].url_for(round_id=request.match_info["round_id"])
    try:
        op = parse_choice(form.get("op"), ("vote", "meeting"), field="操作")
        actor = Actor.of_staff(staff)
        async with transaction(request.app[keys.SESSIONS]) as db:
            round_ = await _round(db, staff, request.match_info["round_id"])
            if op == "vote":
                closes = parse_date(form.get("closes"), field="投票截止日期")
                if closes is None:
                    raise ParamError("请填写投票截止日期", field="closes")
                closes_at = datetime.combine(closes, time(23, 59), tzinfo=CHINA)
                invited = await open_vote(db, round_=round_, closes_at=closes_at, actor=actor, now=now)
                message = f"已发起投票，{invited}位居民收到投票链接"
            else:
                decisions: dict[int, tuple[str, str]] = {}
                for p in await svc.projects_of_round(db, round_id=round_.id or 0):
                    if p.status != "visited" or p.id is None:
                        continue
                    choice = parse_choice(
                        form.get(f"d{p.id}"), ("selected", "rejected"), field=f"「{p.title}」的结论"
                    )
                    reason = form_text(form, f"n{p.id}", max_len=500, field=f"「{p.title}」的理由")
                    decisions[p.id] = (choice, reason)
                listed = await svc.hold_meeting(
                    db,
                    round_=round_,
                    attendees=form_text(form, "attendees", max_len=500, field="参会单位", required=True),
                    minutes=form_text(
                        form, "minutes", max_len=4000, field="会议纪要", required=True, multiline=True
                    ),
                    decisions=decisions,
                    actor=actor,
                    now=now,
                )
                chosen = sum(1 for p in listed if p.status == "selected")
                message = f"已记录联席会议：上会{len(listed)}个，入选{chosen}个"
            await audit(
                db,
                staff=staff,
                action=f"round_{op}",
                now=now,
                detail=f"{round_.town} {round_.name}",
                ip=client_ip(request),
            )
    except ERRORS as exc:
        await flash_redirect(request, url, str(exc), "error")
    await flash_redirect(request, url, message)


# ------------------------------------------------------------------ photos (site and works; no residents)
@routes.get("/project-photos/{name}", name="project_photo")
async def photo(request: web.Request) -> web.StreamResponse:
    """A project's photo from the media storage: a stage or acceptance photo of a published project to anyone;
    any other (site visits, a project not yet published) to staff of the project's town and the city only.
    Every refusal is "not found", so a name says nothing of whether it exists."""
    name = request.match_info["name"]
    async with request.app[keys.SESSIONS]() as db:
        seen = await visibility(db, name)
    if seen is None:
        raise web.HTTPNotFound()
    if not seen.public:
        staff = await current_staff(request)
        if staff is None or not (staff.role in CITY_ROLES or staff.town in seen.towns):
            raise web.HTTPNotFound()
    settings = request.app[keys.SETTINGS]
    data = await read_photo(name, storage=request.app[keys.MEDIA].storage, data_dir=settings.data_dir)
    if data is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=data,
        content_type="image/jpeg",
        headers={
            "Cache-Control": "public, max-age=86400" if seen.public else "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )
