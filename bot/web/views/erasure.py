"""A resident's written request to delete their personal data (PIPL), carried out from the staff view: the staff
member names one of the resident's cases and the request (its number or a short description), confirms, and the
resident's data is erased as in chat — open cases cancelled (their handlers told), personal data anonymised, the
statistics and the hash chain kept, stored photos deleted by the media sweep — and audited. Supervisors and admins
only; a case outside their jurisdiction is "not found"."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot import keys
from bot.cases.actors import SUPERVISORS
from bot.cases.rights import erase_on_written_request
from bot.db import transaction
from bot.models import Staff
from bot.web.auth import require_staff
from bot.web.params import ParamError, parse_case_no
from bot.web.views.common import case_or_404, csrf_form, flash_redirect, now_of
from bot.web.views.staff import render

routes = web.RouteTableDef()


async def _page(
    request: web.Request, *, form: dict[str, Any], error: str | None, status: int = 200
) -> web.Response:
    return await render(request, "staff/erasure.html", {"form": form, "error": error}, status=status)


@routes.get("/staff/erasure", name="staff_erasure")
@require_staff(SUPERVISORS)
async def erasure_form(request: web.Request, staff: Staff) -> web.Response:
    return await _page(request, form={"case_no": request.query.get("case", "")[:20]}, error=None)


@routes.post("/staff/erasure", name="staff_erasure_post")
@require_staff(SUPERVISORS)
async def erasure_submit(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    values = {k: str(form.get(k, ""))[:200] for k in ("case_no", "ground")}
    try:
        case_no = parse_case_no(values["case_no"])
    except ParamError as exc:
        return await _page(request, form=values, error=str(exc), status=400)
    if not values["ground"].strip():
        return await _page(request, form=values, error="请写明书面申请的编号或说明", status=400)
    if form.get("confirm") != "yes":
        return await _page(request, form=values, error="请勾选确认：删除后无法恢复", status=400)
    async with transaction(request.app[keys.SESSIONS]) as db:
        case = await case_or_404(db, staff=staff, case_no=case_no)
        done, _ = await erase_on_written_request(
            db, case=case, staff=staff, ground=values["ground"], now=now_of(request)
        )
    await flash_redirect(request, request.app.router["staff_erasure"].url_for(), done)
