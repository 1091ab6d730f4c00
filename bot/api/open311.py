"""Open311 GeoReport v2 under ``/open311/v2/``, in JSON and XML (by the path's extension), as other cities' civic
tools expect it (http://wiki.open311.org/GeoReport_v2).

- ``discovery``, ``services`` (our categories of both kinds; a kind's code alone for "not sure"),
  ``services/{code}`` (the wish services take an ``item`` attribute), ``requests`` (GET: the standard filters,
  public; POST: ``api_key`` with ``cases:write``), ``requests/{id}``, ``tokens/{token}``.
- Statuses are ``open`` / ``closed`` with the programme's label in ``status_notes``.
- Privacy: the public listing carries no resident data: a request shows its service, town and community, never
  the resident's words (they may name people or houses); the location is the town's centre, never an address. Errors use the spec's format: ``[{"code": 400, "description": "…"}]`` or ``<errors><error>…``.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import web
from sqlmodel import col, select

from bot import keys
from bot.api import service
from bot.api.clients import authenticate
from bot.api.service import Invalid, NewCase, iso
from bot.cases.lifecycle import STATE_LABEL
from bot.cases.numbering import KIND_LABEL
from bot.conversation.nlu.normalize import find_town
from bot.db import transaction
from bot.models import ApiCaseRef, AuditLog, Case, Category
from reference import towns

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
SPEC = "http://wiki.open311.org/GeoReport_v2"
JURISDICTION = "dongguan.gov.cn"
CLOSED = frozenset({"completed", "closed", "rejected", "cancelled", "merged"})
KIND_CODE = {"micro_wish": "wish", "micro_project": "project"}
CODE_KIND = {v: k for k, v in KIND_CODE.items()}
MAX_LIST = 200
MAX_FORM = 64 * 1024


class Open311Error(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


def _fmt(request: web.Request) -> str:
    return request.match_info.get("fmt", "json")


def _render(fmt: str, root: str, item: str, rows: list[dict[str, Any]], status: int = 200) -> web.Response:
    if fmt == "json":
        return web.Response(
            status=status,
            text=json.dumps(rows, ensure_ascii=False),
            content_type="application/json",
            charset="utf-8",
        )
    top = ET.Element(root)
    for row in rows:
        el = ET.SubElement(top, item)
        _fill(el, row)
    body = ET.tostring(top, encoding="unicode")
    return web.Response(
        status=status,
        text='<?xml version="1.0" encoding="utf-8"?>' + body,
        content_type="text/xml",
        charset="utf-8",
    )


def _fill(el: ET.Element, row: dict[str, Any]) -> None:
    for key, value in row.items():
        if isinstance(value, list):
            holder = ET.SubElement(el, key)
            for v in value:
                child = ET.SubElement(holder, key[:-1] if key.endswith("s") else "item")
                if isinstance(v, dict):
                    _fill(child, v)
                else:
                    child.text = str(v)
        elif isinstance(value, dict):
            _fill(ET.SubElement(el, key), value)
        else:
            child = ET.SubElement(el, key)
            if value is not None:
                child.text = str(value).lower() if isinstance(value, bool) else str(value)


@web.middleware
async def open311_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    fmt = "xml" if request.path.endswith(".xml") else "json"
    try:
        return await handler(request)
    except Open311Error as exc:
        return _render(fmt, "errors", "error", [{"code": exc.code, "description": exc.description}], exc.code)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = {404: "not found", 405: "method not allowed"}.get(exc.status, exc.reason)
        resp = _render(fmt, "errors", "error", [{"code": exc.status, "description": text}], exc.status)
        if "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except Exception:
        log.exception("Open311 error on %s %s", request.method, request.path)
        return _render(fmt, "errors", "error", [{"code": 500, "description": "internal error"}], 500)


def _check_jurisdiction(request: web.Request, params: Any = None) -> None:
    value = (params if params is not None else request.query).get("jurisdiction_id")
    if value not in (None, "", JURISDICTION):
        raise Open311Error(404, f"jurisdiction_id not found (this endpoint serves {JURISDICTION})")


# ------------------------------------------------------------------------------------------- discovery
@routes.get(r"/discovery.{fmt:(json|xml)}", name="o311_discovery")
async def discovery(request: web.Request) -> web.Response:
    base = request.config_dict[keys.SETTINGS].base_url.rstrip("/")
    doc: dict[str, Any] = {
        "changeset": "2026-12-05T00:00:00Z",
        "contact": "东莞市 民生大莞家 — 12345",
        "key_service": f"{base}/staff/admin/api-keys",
        "endpoints": [
            {
                "specification": SPEC,
                "url": f"{base}/open311/v2",
                "changeset": "2026-12-05T00:00:00Z",
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    if _fmt(request) == "json":
        return web.json_response(doc)
    top = ET.Element("discovery")
    for key in ("changeset", "contact", "key_service"):
        ET.SubElement(top, key).text = str(doc[key])
    eps = ET.SubElement(top, "endpoints")
    for ep in doc["endpoints"]:
        el = ET.SubElement(eps, "endpoint")
        for key in ("specification", "url", "changeset", "type"):
            ET.SubElement(el, key).text = ep[key]
        formats = ET.SubElement(el, "formats")
        for f in ep["formats"]:
            ET.SubElement(formats, "format").text = f
    return web.Response(text=ET.tostring(top, encoding="unicode"), content_type="text/xml", charset="utf-8")


# -------------------------------------------------------------------------------------------- services
async def _services(request: web.Request) -> list[dict[str, Any]]:
    async with transaction(request.config_dict[keys.SESSIONS]) as session:
        cats = (
            await session.exec(
                select(Category)
                .where(col(Category.active))
                .order_by(col(Category.kind), col(Category.sort), col(Category.id))
            )
        ).all()
    out: list[dict[str, Any]] = []
    for kind, code in KIND_CODE.items():
        out.append(
            {
                "service_code": code,
                "service_name": f"{KIND_LABEL[kind]}（未分类）",
                "description": f"不确定类别的{KIND_LABEL[kind]}",
                "metadata": kind == "micro_wish",
                "type": "realtime",
                "keywords": KIND_LABEL[kind],
                "group": KIND_LABEL[kind],
            }
        )
        for cat in cats:
            if cat.kind == kind:
                out.append(
                    {
                        "service_code": f"{code}-{cat.id}",
                        "service_name": cat.name,
                        "description": f"{KIND_LABEL[kind]}：{cat.name}",
                        "metadata": kind == "micro_wish",
                        "type": "realtime",
                        "keywords": cat.name,
                        "group": KIND_LABEL[kind],
                    }
                )
    return out


async def _service(request: web.Request, code: str) -> dict[str, Any]:
    for svc in await _services(request):
        if svc["service_code"] == code:
            return svc
    raise Open311Error(404, f"service_code {code[:40]} not found")


def _kind_category(svc: dict[str, Any]) -> tuple[str, str | None]:
    code = svc["service_code"]
    kind = CODE_KIND[code.split("-")[0]]
    return kind, (svc["service_name"] if "-" in code else None)


@routes.get(r"/services.{fmt:(json|xml)}", name="o311_services")
async def services(request: web.Request) -> web.Response:
    _check_jurisdiction(request)
    return _render(_fmt(request), "services", "service", await _services(request))


@routes.get(r"/services/{code}.{fmt:(json|xml)}", name="o311_service")
async def service_definition(request: web.Request) -> web.Response:
    _check_jurisdiction(request)
    svc = await _service(request, request.match_info["code"])
    attributes = []
    if svc["metadata"]:
        attributes.append(
            {
                "variable": True,
                "code": "item",
                "datatype": "string",
                "required": False,
                "datatype_description": "需要的物品或服务，如 轮椅、助听器、大米",
                "order": 1,
                "description": "需要什么",
            }
        )
    doc = {"service_code": svc["service_code"], "attributes": attributes}
    if _fmt(request) == "json":
        return web.json_response(doc)
    top = ET.Element("service_definition")
    ET.SubElement(top, "service_code").text = svc["service_code"]
    holder = ET.SubElement(top, "attributes")
    for attr in attributes:
        _fill(ET.SubElement(holder, "attribute"), attr)
    return web.Response(text=ET.tostring(top, encoding="unicode"), content_type="text/xml", charset="utf-8")


# -------------------------------------------------------------------------------------------- requests
def _public(case: Case, code: str, name: str) -> dict[str, Any]:
    town = towns.get(case.town)
    closed = case.status in CLOSED
    return {
        "service_request_id": case.case_no,
        "status": "closed" if closed else "open",
        "status_notes": STATE_LABEL.get(case.status, case.status),
        "service_name": name,
        "service_code": code,
        # never the resident's own words: masking catches numbers, not names or house addresses
        "description": f"{KIND_LABEL.get(case.kind, '')}：{name}（{case.town}{case.community or ''}）",
        "agency_responsible": f"{case.town}社会事务局",
        "service_notice": "",
        "requested_datetime": iso(case.created_at),
        "updated_datetime": iso(case.updated_at),
        "expected_datetime": None if closed else iso(case.stage_deadline),
        "address": f"东莞市{case.town}{case.community or ''}",
        "address_id": None,
        "zipcode": None,
        "lat": town.lat if town else None,
        "long": town.lon if town else None,
        "media_url": None,
    }


def _parse_w3c(raw: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00")) if 0 < len(raw) <= 40 else None
    except ValueError:
        value = None
    if value is None:
        raise Open311Error(400, f"{name} must be a w3c datetime such as 2026-12-01T00:00:00Z")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _code_names(request: web.Request) -> dict[tuple[str, str | None], tuple[str, str]]:
    names: dict[tuple[str, str | None], tuple[str, str]] = {}
    for svc in await _services(request):
        names[_kind_category(svc)] = (svc["service_code"], svc["service_name"])
    return names


def _code_of(case: Case, names: dict[tuple[str, str | None], tuple[str, str]]) -> tuple[str, str]:
    return (
        names.get((case.kind, case.category))
        or names.get((case.kind, None))
        or (KIND_CODE.get(case.kind, ""), "")
    )


@routes.get(r"/requests.{fmt:(json|xml)}", name="o311_requests")
async def list_requests(request: web.Request) -> web.Response:
    q = request.query
    _check_jurisdiction(request)
    now = request.config_dict[keys.CLOCK]()
    query = select(Case)
    if ids := q.get("service_request_id"):
        wanted = [i.strip() for i in ids.split(",") if i.strip()][:MAX_LIST]
        if any(len(i) > 24 for i in wanted):
            raise Open311Error(400, "service_request_id is not valid")
        query = query.where(col(Case.case_no).in_(wanted))
    else:
        end = _parse_w3c(q["end_date"], "end_date") if q.get("end_date") else now
        start = _parse_w3c(q["start_date"], "start_date") if q.get("start_date") else end - timedelta(days=90)
        if start > end:
            raise Open311Error(400, "start_date is after end_date")
        if end - start > timedelta(days=90):
            raise Open311Error(400, "the date range may not span more than 90 days")
        query = query.where(col(Case.created_at) >= start, col(Case.created_at) <= end)
        if status := q.get("status"):
            states = {s.strip() for s in status.split(",")}
            if not states <= {"open", "closed"}:
                raise Open311Error(400, "status must be open or closed")
            if states == {"open"}:
                query = query.where(col(Case.status).not_in(CLOSED))
            elif states == {"closed"}:
                query = query.where(col(Case.status).in_(CLOSED))
    names = await _code_names(request)
    if codes := q.get("service_code"):
        wanted_codes = {c.strip() for c in codes.split(",")}
        pairs = [k for k, (code, _) in names.items() if code in wanted_codes]
        if not pairs:
            return _render(_fmt(request), "service_requests", "request", [])
    async with transaction(request.config_dict[keys.SESSIONS]) as session:
        rows = (await session.exec(query.order_by(col(Case.created_at).desc()).limit(MAX_LIST))).all()
    out = []
    for case in rows:
        code, name = _code_of(case, names)
        if codes and code not in wanted_codes:
            continue
        out.append(_public(case, code, name))
    return _render(_fmt(request), "service_requests", "request", out)


@routes.get(r"/requests/{rid}.{fmt:(json|xml)}", name="o311_request")
async def read_request(request: web.Request) -> web.Response:
    _check_jurisdiction(request)
    rid = request.match_info["rid"]
    if len(rid) > 24:
        raise Open311Error(404, "service_request_id not found")
    async with transaction(request.config_dict[keys.SESSIONS]) as session:
        case = (await session.exec(select(Case).where(Case.case_no == rid))).first()
    if case is None:
        raise Open311Error(404, "service_request_id not found")
    code, name = _code_of(case, await _code_names(request))
    return _render(_fmt(request), "service_requests", "request", [_public(case, code, name)])


@routes.get(r"/tokens/{token}.{fmt:(json|xml)}", name="o311_token")
async def read_token(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    if not token.startswith("o311-") or len(token) > 64:
        raise Open311Error(404, "token not found")
    async with transaction(request.config_dict[keys.SESSIONS]) as session:
        ref = (await session.exec(select(ApiCaseRef).where(ApiCaseRef.external_id == token))).first()
        case = await session.get(Case, ref.case_id) if ref else None
    if case is None:
        raise Open311Error(404, "token not found")
    return _render(
        _fmt(request), "service_requests", "request", [{"service_request_id": case.case_no, "token": token}]
    )


def _town_from(form: Any) -> str | None:
    lat, lon = form.get("lat"), form.get("long")
    if lat or lon:
        try:
            la, lo = float(lat), float(lon)
        except (TypeError, ValueError) as exc:
            raise Open311Error(400, "lat and long must be numbers") from exc
        if not (22.4 <= la <= 23.3 and 113.4 <= lo <= 114.4):
            raise Open311Error(400, "lat/long is outside Dongguan")
        return towns.nearest(la, lo).name
    if address := form.get("address_string"):
        return find_town(str(address)[:200])
    return None


@routes.post(r"/requests.{fmt:(json|xml)}", name="o311_create")
async def create_request(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > MAX_FORM:
        raise Open311Error(400, "request too large")
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Open311Error(400, "send the request as application/x-www-form-urlencoded")
    form = await request.post()
    _check_jurisdiction(request, form)
    key = str(form.get("api_key") or "")
    sessions = request.config_dict[keys.SESSIONS]
    now = request.config_dict[keys.CLOCK]()
    async with transaction(sessions) as session:
        caller = await authenticate(session, key=key, now=now) if key else None
    if caller is None or not caller.may("cases:write"):
        raise Open311Error(403, "api_key is missing, invalid or not allowed to create requests")
    code = str(form.get("service_code") or "")
    if not code:
        raise Open311Error(400, "service_code is required")
    svc = await _service(request, code[:40])
    kind, category = _kind_category(svc)
    description = str(form.get("description") or "").strip()
    if not description:
        raise Open311Error(400, "description is required")
    town = _town_from(form)
    if town is None:
        raise Open311Error(400, "a location is required: lat and long, or an address_string naming a town")
    phone = str(form.get("phone") or "").strip() or None
    token = f"o311-{secrets.token_hex(12)}"
    body = {
        "external_id": token,
        "kind": kind,
        "town": town,
        "description": description[:2000],
        "category": category,
        "item": str(form.get("attribute[item]") or "").strip() or None,
        "address": (str(form.get("address_string") or "").strip() or None),
        "contact_phone": phone,
    }
    try:
        async with transaction(sessions) as session:
            new: NewCase = await service.parse_new_case(session, body, caller)
            case, _ = await service.create(session, new, caller, now=now)
            session.add(
                AuditLog(
                    action="api_call",
                    case_id=case.id,
                    detail=f"{caller.name}: Open311 POST requests",
                    ip=(request.remote or "")[:64] or None,
                    at=now,
                )
            )
            case_no = case.case_no
    except Invalid as exc:
        raise Open311Error(400, str(exc)) from exc
    notice = f"已收到，编号 {case_no}；{town}的工作人员会在工作日内核实处理。"
    return _render(
        _fmt(request),
        "service_requests",
        "request",
        [{"service_request_id": case_no, "token": token, "service_notice": notice, "account_id": None}],
    )


def create_open311_app() -> web.Application:
    app = web.Application(middlewares=[open311_errors])
    app.add_routes(routes)
    return app


__all__ = ["create_open311_app"]
