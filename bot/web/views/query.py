"""诉求查询 on the web, for residents without WeChat: the case number and the phone it was registered with, then a
code sent to that phone by SMS. The page answers exactly the same whether or not the number and phone match (no
enumeration), attempts are limited per address, per case number and per phone, codes are stored hashed, expire
after five minutes and allow five tries; a successful query is audited and opens that one case for 30 minutes."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session
from sqlmodel import col, select

from bot import keys
from bot.background import spawn
from bot.cases.lifecycle import RESIDENT_VISIBLE_EVENTS, RESIDENT_VISIBLE_NOTES, STATE_LABEL
from bot.cases.numbering import CHINA, KIND_LABEL
from bot.cases.titles import resident_labels
from bot.conversation.ratelimit import RateLimiter
from bot.db import transaction
from bot.delivery.dispatcher import DeliveryConfig
from bot.delivery.texts import CODE_KIND, send_sms_now
from bot.models import AuditLog, Case, CaseEvent, QueryCode
from bot.web.params import ParamError, parse_case_no
from bot.web.websec import check_csrf
from reference.privacy import mask_phone, parse_phone_field

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
CODE_TTL = timedelta(minutes=5)
OPEN_FOR = 30 * 60
MAX_TRIES = 5
SENT_TEXT = "如果诉求编号和手机号对得上，验证码已经用短信发到这个手机（5 分钟内有效）。没收到的话，请核对编号和手机号，或者拨打 12345。"


def _hash(token: str, code: str) -> str:
    return hashlib.sha256(f"{token}:{code}".encode()).hexdigest()


def _limiters(request: web.Request) -> dict[str, RateLimiter]:
    made = request.app[keys.LIMITERS]
    # Redis is connected after the app is built: the limiters are made on first use, shared when Redis is set
    if "query:ip" not in made:
        redis = request.app[keys.REDIS]
        for name, limit in (("ip", 10), ("case", 5), ("phone", 5), ("verify", 20)):
            made[f"query:{name}"] = RateLimiter(limit=limit, window=3600, redis=redis)
    return {name.removeprefix("query:"): lim for name, lim in made.items() if name.startswith("query:")}


def _send_later(app: web.Application, *, phone: str, code: str, case_id: int | None) -> None:
    """A one-time code goes out at once or not at all (a late code is useless), under the same per-number limit as
    every other text (``send_sms_now``); what happened is logged, the page says the same either way."""
    provider = app[keys.SMS]
    if provider is None:
        log.warning("web query: SMS is off, no code sent")
        return
    config = DeliveryConfig(sms=provider, sms_per_hour=app[keys.SETTINGS].sms_per_number_per_hour)

    async def run() -> None:
        outcome = await send_sms_now(
            app[keys.SESSIONS],
            phone=phone,
            template="code",
            params=[code],
            kind=CODE_KIND,  # one of ONE_TIME_KINDS: never resent, never a call task
            text="网页查询验证码（验证码不保存）",
            now=app[keys.CLOCK](),
            config=config,
            case_id=case_id,
        )
        if outcome != "sent":
            log.warning("web query code to %s not sent: %s", mask_phone(phone), outcome)

    spawn(app, run())


def _page(request: web.Request, name: str, status: int = 200, **ctx: Any) -> web.Response:
    resp = aiohttp_jinja2.render_template(f"query/{name}.html", request, ctx)
    resp.set_status(status)
    return resp


@routes.get("/query", name="query_form")
async def query_form(request: web.Request) -> web.Response:
    return _page(request, "form", case_no="", phone="", error="")


@routes.post("/query", name="query_send")
async def query_send(request: web.Request) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    raw_no, raw_phone = str(form.get("case_no", ""))[:40], str(form.get("phone", ""))[:40]
    try:
        case_no = parse_case_no(raw_no.strip().upper())
    except ParamError:
        return _page(
            request,
            "form",
            400,
            case_no=raw_no,
            phone=raw_phone,
            error="诉求编号的样子是 MS20261205-0001，请核对。",
        )
    phone = parse_phone_field(raw_phone)
    if phone is None or len(phone) != 11:
        return _page(
            request, "form", 400, case_no=raw_no, phone=raw_phone, error="请填写登记时留的 11 位手机号。"
        )
    limits = _limiters(request)
    now = request.app[keys.CLOCK]()
    ts = now.timestamp()
    allowed = [
        await limits["ip"].allow(f"q:ip:{request.remote}", now=ts),
        await limits["case"].allow(f"q:case:{case_no}", now=ts),
        await limits["phone"].allow(f"q:phone:{phone}", now=ts),
    ]
    if not all(allowed):
        return _page(
            request,
            "form",
            429,
            case_no=raw_no,
            phone=raw_phone,
            error="查询太频繁了，请一小时后再试，或者拨打 12345。",
        )
    token, code = secrets.token_urlsafe(24), f"{secrets.randbelow(10**6):06d}"
    async with transaction(request.app[keys.SESSIONS]) as db:
        case = (await db.exec(select(Case).where(Case.case_no == case_no))).first()
        match = case is not None and parse_phone_field(case.contact_phone or "") == phone
        db.add(
            QueryCode(
                token=token,
                case_id=case.id if match and case else None,
                code_hash=_hash(token, code),
                expires_at=now + CODE_TTL,
                created_at=now,
            )
        )
    if match:  # sent in the background, so a match takes no longer to answer than a miss
        _send_later(request.app, phone=phone, code=code, case_id=case.id if case else None)
    return _page(request, "code", token=token, phone=mask_phone(phone), text=SENT_TEXT, error="")


@routes.post("/query/verify", name="query_verify")
async def query_verify(request: web.Request) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    token, code = str(form.get("token", ""))[:48], str(form.get("code", "")).strip()[:12]
    now = request.app[keys.CLOCK]()
    if not await _limiters(request)["verify"].allow(f"q:verify:{request.remote}", now=now.timestamp()):
        return _page(
            request, "form", 429, case_no="", phone="", error="尝试太多次了，请一小时后再试，或者拨打 12345。"
        )
    wrong = "验证码不对或者已经过期。可以返回重新获取。"
    async with transaction(request.app[keys.SESSIONS]) as db:
        row = (await db.exec(select(QueryCode).where(QueryCode.token == token))).first()
        if row is None:
            return _page(request, "code", 400, token=token, phone="", text="", error=wrong)
        usable = row.used_at is None and row.attempts < MAX_TRIES and row.expires_at > now
        good = (
            usable
            and code.isascii()
            and code.isdigit()
            and hmac.compare_digest(row.code_hash, _hash(token, code))
        )
        if not good or row.case_id is None:
            row.attempts += 1
            return _page(request, "code", 400, token=token, phone="", text="", error=wrong)
        row.used_at = now
        db.add(
            AuditLog(
                action="web_query",
                case_id=row.case_id,
                detail="居民通过网页查询（短信验证码）",
                ip=(request.remote or "")[:64] or None,
                at=now,
            )
        )
        case_id = row.case_id
    session = await get_session(request)
    session["query_case"] = {"id": case_id, "until": now.timestamp() + OPEN_FOR}
    raise web.HTTPSeeOther(str(request.app.router["query_case"].url_for()))


@routes.get("/query/case", name="query_case")
async def query_case(request: web.Request) -> web.Response:
    session = await get_session(request)
    grant = session.get("query_case")
    now = request.app[keys.CLOCK]()
    if not isinstance(grant, dict) or grant.get("until", 0) < now.timestamp():
        raise web.HTTPSeeOther(str(request.app.router["query_form"].url_for()))
    async with request.app[keys.SESSIONS]() as db:
        case = await db.get(Case, int(grant["id"]))
        if case is None:
            raise web.HTTPNotFound()
        events = list(
            await db.exec(
                select(CaseEvent)
                .where(CaseEvent.case_id == case.id, col(CaseEvent.kind).in_(sorted(RESIDENT_VISIBLE_EVENTS)))
                .order_by(col(CaseEvent.at), col(CaseEvent.id))
            )
        )
    return _page(
        request,
        "case",
        c=case,
        events=events,
        STATE_LABEL=resident_labels(STATE_LABEL),
        KIND_LABEL=KIND_LABEL,
        visible_notes=RESIDENT_VISIBLE_NOTES,
        fmt=lambda dt: dt.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if dt else "",
    )
