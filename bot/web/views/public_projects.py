"""微实事 on the public side: 公示 before the work (approved list, budget, funding, unit, the objection window and
a form to object) and after it (result, money spent against budget, photos), the totals per town, and the
residents' vote opened from the signed link sent in WeChat (``/vote/<token>``).

Both forms are rate limited per hour (``bot.conversation.ratelimit.RateLimiter``, in Redis when configured, so
every worker counts together): objections per address (the form asks for no phone and keeps no one's identity);
votes per address and per resident of the signed link. Past a limit the page answers 429 with a Chinese message.

Nothing identifying a resident is shown (``bot.projects.figures`` selects only the project's public fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot import keys
from bot.cases.funds import yuan
from bot.conversation.ratelimit import RateLimiter
from bot.db import transaction
from bot.deadlines.workdays import CHINA
from bot.delivery.links import BadLink, verify_link
from bot.projects import service as svc
from bot.projects.figures import public_list, public_project, totals
from bot.projects.tables import Project, ProjectRound
from bot.projects.votes import (
    VOTABLE,
    VOTE_LINK_KIND,
    cast_vote,
    my_vote,
    parse_subject,
    results,
    vote_is_open,
)
from bot.reporting.scope import TOWN_NAMES
from bot.web.params import ParamError, form_text, parse_choice, parse_int, parse_int_id, parse_page
from bot.web.views.common import client_ip, csrf_form, flash, now_of

routes = web.RouteTableDef()
#: posts per hour: objections per address (generous: carriers and a community hall's Wi-Fi share addresses);
#: votes per address and per resident (a resident votes once, so a few tries cover mistakes and double taps)
LIMITS = {"objection-ip": 10, "vote-ip": 30, "vote-resident": 5}
LIMITED = "提交太频繁了，请一小时后再试。如需帮助，请拨打 12345 或联系镇街工作人员。"


async def _allowed(request: web.Request, name: str, value: object) -> bool:
    made = request.app[keys.LIMITERS]
    # Redis is connected after the app is built: the limiters are made on first use, shared when Redis is set
    if "projects:objection-ip" not in made:
        for key, limit in LIMITS.items():
            made[f"projects:{key}"] = RateLimiter(limit=limit, window=3600, redis=request.app[keys.REDIS])
    limiter: RateLimiter = made[f"projects:{name}"]
    return await limiter.allow(f"projects:{name}:{value}", now=now_of(request).timestamp())


def _day(dt: datetime | None) -> str:
    return dt.astimezone(CHINA).strftime("%Y-%m-%d") if dt else ""


def _render(request: web.Request, template: str, ctx: dict[str, Any], status: int = 200) -> web.Response:
    response = aiohttp_jinja2.render_template(
        template,
        request,
        {
            "towns": TOWN_NAMES,
            "yuan": yuan,
            "day": _day,
            "status_label": svc.STATUS_LABEL,
            **ctx,
        },
    )
    response.set_status(status)
    return response


@routes.get("/public/projects", name="public_projects")
async def project_list(request: web.Request) -> web.Response:
    try:
        town = parse_choice(request.query.get("town"), ("", *TOWN_NAMES), default="", field="镇街") or None
        page = parse_page(request.query)
    except ParamError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    async with request.app[keys.SESSIONS]() as db:
        rows, has_next = await public_list(db, town=town, page=page)
        by_town, rounds = await totals(db, town=town)
    base = request.app.router["public_projects"].url_for()
    q = {"town": town} if town else {}
    return _render(
        request,
        "public/projects.html",
        {
            "town": town,
            "rows": rows,
            "by_town": by_town,
            "rounds": [(r, t) for r, t in rounds if t.proposals],
            "now": now_of(request),
            "prev_url": str(base.with_query({**q, "page": str(page - 1)})) if page > 1 else None,
            "next_url": str(base.with_query({**q, "page": str(page + 1)})) if has_next else None,
        },
    )


async def _public(request: web.Request, db: Any) -> Any:
    try:
        pid = parse_int_id(request.match_info["project_id"], field="项目编号")
    except ParamError:
        raise web.HTTPNotFound() from None
    found = await public_project(db, project_id=pid, now=now_of(request))
    if found is None:
        raise web.HTTPNotFound()
    return found


async def _detail(request: web.Request, *, status: int = 200, notice: str | None = None) -> web.Response:
    # lazy: the flash message lives in the session; only this page and the vote page read it on the public side
    from aiohttp_session import get_session

    now = now_of(request)
    async with request.app[keys.SESSIONS]() as db:
        p = await _public(request, db)
    session = await get_session(request)
    shown = session.pop("flash", None)
    return _render(
        request,
        "public/project.html",
        {
            "p": p,
            "notice_open": svc.notice_open(p.project, now),
            "flash": {"text": notice, "kind": "error"} if notice else shown,
        },
        status=status,
    )


@routes.get("/public/projects/{project_id}", name="public_project")
async def project_detail(request: web.Request) -> web.Response:
    return await _detail(request)


@routes.post("/public/projects/{project_id}/objection", name="public_project_objection")
async def project_objection(request: web.Request) -> web.Response:
    form = await csrf_form(request)
    url = request.app.router["public_project"].url_for(project_id=request.match_info["project_id"])
    if not await _allowed(request, "objection-ip", client_ip(request)):
        return await _detail(request, status=429, notice=LIMITED)
    try:
        text = form_text(form, "text", max_len=500, field="异议内容", required=True, multiline=True)
        async with transaction(request.app[keys.SESSIONS]) as db:
            p = await _public(request, db)
            await svc.raise_objection(db, project=p.project, text=text, channel="public", now=now_of(request))
    except (ParamError, svc.ProjectError) as exc:
        await flash(request, str(exc), "error")
        raise web.HTTPFound(url.with_fragment("objection")) from None
    await flash(request, "您的意见已收到，镇街将在公示页答复。")
    raise web.HTTPFound(url.with_fragment("objection"))


# ------------------------------------------------------------------ the residents' vote (signed link)
def _subject(request: web.Request) -> tuple[int, int]:
    try:
        subject = verify_link(
            request.app[keys.SETTINGS].link_secret,
            VOTE_LINK_KIND,
            request.match_info["token"],
            now=now_of(request).timestamp(),
        )
        return parse_subject(subject)
    except (BadLink, svc.ProjectError):
        raise web.HTTPForbidden(text="投票链接无效或已过期，请在公众号里重新获取。") from None


async def _vote_page(request: web.Request, *, status: int = 200, notice: str | None = None) -> web.Response:
    # lazy: as above, the flash message in the session
    from aiohttp_session import get_session

    round_id, resident_id = _subject(request)
    now = now_of(request)
    async with request.app[keys.SESSIONS]() as db:
        round_ = await db.get(ProjectRound, round_id)
        if round_ is None:
            raise web.HTTPNotFound()
        projects = [p for p in await svc.projects_of_round(db, round_id=round_id) if p.status in VOTABLE]
        mine = await my_vote(db, round_id=round_id, resident_id=resident_id)
        counts = await results(db, round_id=round_id)
    session = await get_session(request)
    shown = session.pop("flash", None)
    return _render(
        request,
        "public/vote.html",
        {
            "round": round_,
            "projects": projects,
            "mine": mine,
            "counts": counts,
            "total": sum(counts.values()),
            "open": vote_is_open(round_, now),
            "flash": {"text": notice, "kind": "error"} if notice else shown,
            "token": request.match_info["token"],
        },
        status=status,
    )


@routes.get("/vote/{token}", name="vote")
async def vote_page(request: web.Request) -> web.Response:
    return await _vote_page(request)


@routes.post("/vote/{token}", name="vote_post")
async def vote_post(request: web.Request) -> web.Response:
    form = await csrf_form(request)
    if not await _allowed(request, "vote-ip", client_ip(request)):
        return await _vote_page(request, status=429, notice=LIMITED)
    round_id, resident_id = _subject(request)
    if not await _allowed(request, "vote-resident", resident_id):
        return await _vote_page(request, status=429, notice=LIMITED)
    url = request.app.router["vote"].url_for(token=request.match_info["token"])
    try:
        project_id = parse_int(form.get("project_id"), field="提案", lo=1)
        async with transaction(request.app[keys.SESSIONS]) as db:
            round_ = await db.get(ProjectRound, round_id)
            if round_ is None:
                raise web.HTTPNotFound()
            await cast_vote(
                db, round_=round_, project_id=project_id, resident_id=resident_id, now=now_of(request)
            )
            chosen = await db.get(Project, project_id)
    except (ParamError, svc.ProjectError) as exc:
        await flash(request, str(exc), "error")
        raise web.HTTPFound(url) from None
    await flash(request, f"投票成功：您投给了「{chosen.title if chosen else ''}」。")
    raise web.HTTPFound(url)
