"""A resident's own cases and their timelines, opened from a signed link (`/my/cases?t=<signed>`)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from sqlmodel import col, select

from bot import keys
from bot.cases.lifecycle import (
    RESIDENT_LINK_KIND,
    RESIDENT_VISIBLE_EVENTS,
    RESIDENT_VISIBLE_NOTES,
    STATE_LABEL,
)
from bot.cases.numbering import CHANNELS, CHINA, KIND_LABEL
from bot.cases.titles import resident_labels
from bot.delivery.links import BadLink, verify_link
from bot.models import Case, CaseEvent
from bot.web.params import ParamError, parse_case_no, parse_int_id
from bot.web.views.common import now_of

routes = web.RouteTableDef()


def _resident_id(request: web.Request) -> int:
    settings = request.app[keys.SETTINGS]
    token = request.query.get("t", "")
    try:
        subject = verify_link(
            settings.link_secret, RESIDENT_LINK_KIND, token, now=now_of(request).timestamp()
        )
    except BadLink:
        raise web.HTTPForbidden(text="链接已失效，请在公众号里发送“查询进度”重新获取。") from None
    try:
        return parse_int_id(subject)
    except ParamError:
        raise web.HTTPForbidden(text="链接无效") from None


def _fmt(dt: object) -> str:
    # lazy: only the date formatter needs it
    from datetime import datetime

    return dt.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if isinstance(dt, datetime) else ""


def _ctx(**kw: object) -> dict[str, object]:
    return {
        "STATE_LABEL": resident_labels(STATE_LABEL),
        "KIND_LABEL": KIND_LABEL,
        "CHANNELS": CHANNELS,
        "fmt": _fmt,
        **kw,
    }


@routes.get("/my/cases", name="resident_cases")
async def my_cases(request: web.Request) -> web.Response:
    resident_id = _resident_id(request)
    async with request.app[keys.SESSIONS]() as db:
        cases = list(
            await db.exec(
                select(Case)
                .where(Case.resident_id == resident_id)
                .order_by(col(Case.created_at).desc())
                .limit(50)
            )
        )
    return aiohttp_jinja2.render_template(
        "resident/cases.html", request, _ctx(cases=cases, t=request.query["t"])
    )


@routes.get("/my/cases/{case_no}", name="resident_case")
async def my_case(request: web.Request) -> web.Response:
    resident_id = _resident_id(request)
    async with request.app[keys.SESSIONS]() as db:
        case = (
            await db.exec(
                select(Case).where(
                    Case.case_no == parse_case_no(request.match_info["case_no"]),
                    Case.resident_id == resident_id,
                )
            )
        ).first()
        if case is None:
            raise web.HTTPNotFound()
        events = list(
            await db.exec(
                select(CaseEvent)
                .where(CaseEvent.case_id == case.id, col(CaseEvent.kind).in_(sorted(RESIDENT_VISIBLE_EVENTS)))
                .order_by(col(CaseEvent.at), col(CaseEvent.id))
            )
        )
    return aiohttp_jinja2.render_template(
        "resident/case.html",
        request,
        _ctx(c=case, events=events, t=request.query["t"], visible_notes=RESIDENT_VISIBLE_NOTES),
    )
