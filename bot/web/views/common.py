"""Small helpers every staff view shares: the injectable clock, the client address, times as staff read them,
the ``?page=`` parameter, the CSRF-checked form, flash messages and the jurisdiction lookup of a case."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

from aiohttp import web
from aiohttp_session import get_session
from multidict import MultiDictProxy
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import keys
from bot.cases.access import get_case_for
from bot.models import Case, Staff
from bot.web.params import MAX_PAGE, parse_case_no, parse_page
from bot.web.websec import check_csrf

__all__ = [
    "MAX_PAGE",
    "case_or_404",
    "client_ip",
    "csrf_form",
    "flash",
    "flash_redirect",
    "fmt_time",
    "now_of",
    "page_param",
]


def now_of(request: web.Request) -> datetime:
    """The app's clock (tests inject a fixed one)."""
    now: datetime = request.app[keys.CLOCK]()
    return now


def client_ip(request: web.Request) -> str | None:
    """The client's address; behind a trusted proxy `bot.web.websec.client_address` has already put the
    X-Forwarded-For address into ``request.remote``."""
    return request.remote


def fmt_time(dt: datetime | None) -> str:
    """China time, month-day hour:minute; empty for no time."""
    # lazy: bot.cases.numbering imports the web views' helpers' callers; loaded on first use
    from bot.cases.numbering import CHINA

    return dt.astimezone(CHINA).strftime("%m-%d %H:%M") if dt else ""


def page_param(request: web.Request) -> int:
    """``?page=`` as a page number from 1 to ``MAX_PAGE`` (1 when absent or not ASCII digits)."""
    return parse_page(request.query)


async def csrf_form(request: web.Request) -> MultiDictProxy[Any]:
    """The posted form, after its CSRF token has been checked (a bad token ends the request)."""
    form = await request.post()
    await check_csrf(request, form)
    return form


async def flash(request: web.Request, text: str, kind: str = "info") -> None:
    """A message shown once on the next page."""
    session = await get_session(request)
    session["flash"] = {"text": text, "kind": kind}


async def flash_redirect(request: web.Request, url: Any, text: str, kind: str = "info") -> NoReturn:
    """Flash ``text`` and send the browser to ``url`` (a 302, as every form here answers)."""
    await flash(request, text, kind)
    raise web.HTTPFound(url) from None


async def case_or_404(db: AsyncSession, *, staff: Staff, case_no: str) -> Case:
    """The case if it lies in the staff member's jurisdiction; another town's case is "not found"."""
    case = await get_case_for(db, staff=staff, case_no=parse_case_no(case_no))
    if case is None:
        raise web.HTTPNotFound()
    return case
