"""The satisfaction survey page, opened from the signed link in the survey message (`/survey/<token>`), or from
the short signed link in a survey text message (`/s/<token>`, ``bot.delivery.links.sign_short``): no sign-in,
expiring with the link, one answer only (a second one changes nothing). The short page shows nothing about the
resident or the case (the text message says which case it is): a forwarded or guessed link reveals nothing."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from sqlmodel import select

from bot import keys
from bot.cases.survey import SCORE_LABEL, record_answer
from bot.db import transaction
from bot.delivery.links import BadLink, verify_link, verify_short
from bot.models import Case, Survey
from bot.web.params import ParamError, form_text, optional_int, parse_int_id
from bot.web.websec import check_csrf

routes = web.RouteTableDef()
LINK_KIND = "survey"
GONE = "链接已失效。您也可以直接在公众号里回复数字 1–5 评价。"


def _survey_id(request: web.Request) -> int:
    settings = request.app[keys.SETTINGS]
    now = request.app[keys.CLOCK]().timestamp()
    try:
        subject = verify_link(settings.link_secret, LINK_KIND, request.match_info["token"], now=now)
    except BadLink:
        raise web.HTTPForbidden(text=GONE) from None
    try:
        return parse_int_id(subject)
    except ParamError:
        raise web.HTTPForbidden(text="链接无效") from None


async def _load(request: web.Request, session: object, survey_id: int) -> tuple[Survey, Case]:
    survey = (await session.exec(select(Survey).where(Survey.id == survey_id))).first()  # type: ignore[attr-defined]
    case = await session.get(Case, survey.case_id) if survey else None  # type: ignore[attr-defined]
    if survey is None or case is None:
        raise web.HTTPNotFound(text="找不到这份评价")
    return survey, case


def _ctx(survey: Survey, case: Case, token: str, **kw: object) -> dict[str, object]:
    return {"survey": survey, "case": case, "token": token, "labels": SCORE_LABEL, "short": False, **kw}


def _short_id(request: web.Request) -> int:
    settings = request.app[keys.SETTINGS]
    now = request.app[keys.CLOCK]().timestamp()
    try:
        return verify_short(settings.link_secret, LINK_KIND, request.match_info["token"][:40], now=now)
    except (BadLink, ValueError):
        raise web.HTTPForbidden(text="链接已失效。您也可以直接回复短信数字 1–5 评价。") from None


@routes.get("/survey/{token}", name="survey_form")
async def survey_form(request: web.Request) -> web.Response:
    return await _show(request, _survey_id(request), short=False)


@routes.get("/s/{token}", name="survey_short")
async def survey_short(request: web.Request) -> web.Response:
    return await _show(request, _short_id(request), short=True)


@routes.post("/survey/{token}", name="survey_answer")
async def survey_answer(request: web.Request) -> web.Response:
    return await _answer(request, _survey_id(request), short=False)


@routes.post("/s/{token}", name="survey_short_answer")
async def survey_short_answer(request: web.Request) -> web.Response:
    return await _answer(request, _short_id(request), short=True)


async def _show(request: web.Request, survey_id: int, *, short: bool) -> web.Response:
    async with request.app[keys.SESSIONS]() as session:
        survey, case = await _load(request, session, survey_id)
    return aiohttp_jinja2.render_template(
        "survey/form.html", request, _ctx(survey, case, request.match_info["token"], error=None, short=short)
    )


async def _answer(request: web.Request, survey_id: int, *, short: bool) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    token = request.match_info["token"]
    try:
        score = optional_int(form.get("score"), field="分数", lo=1, hi=5)
    except ParamError:
        score = None
    comment = str(form.get("comment", ""))[:2000]
    try:
        comment = form_text(form, "comment", max_len=500, field="意见", multiline=True)
        error = None if score is not None else "请先选择一个分数（1–5）"
    except ParamError as exc:
        error = exc.message
    now = request.app[keys.CLOCK]()
    async with transaction(request.app[keys.SESSIONS]) as session:
        survey, case = await _load(request, session, survey_id)
        if survey.status != "sent":
            return aiohttp_jinja2.render_template(
                "survey/form.html", request, _ctx(survey, case, token, error=None, short=short)
            )
        if error or score is None:
            return aiohttp_jinja2.render_template(
                "survey/form.html",
                request,
                _ctx(survey, case, token, error=error, comment=comment[:500], short=short),
                status=400,
            )
        await record_answer(session, survey=survey, score=score, comment=comment, via="page", now=now)
    return aiohttp_jinja2.render_template(
        "survey/form.html", request, _ctx(survey, case, token, error=None, short=short)
    )
