"""Open311 GeoReport v2 through the real app on a real port, read with a published client library (georeport, from
the package index) in JSON and XML; requests posted as the spec's form body (georeport cannot post)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from georeport import GeoReport
from sqlmodel import select

from bot.api.clients import create_client
from bot.db import make_engine, make_sessions, transaction
from bot.models import Case
from bot.ops.seed import seed_categories
from tests.helpers import app_client

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


@pytest.fixture
async def o311(db_url: str, tmp_path: Any, aiohttp_client: Any) -> Any:
    client = await app_client(db_url, tmp_path, aiohttp_client, now=NOW)
    engine = make_engine(db_url)
    try:
        async with transaction(make_sessions(engine)) as s:
            await seed_categories(s)
            _, key = await create_client(s, name="他市工具", scopes=["cases:write"], town=None, now=NOW)
    finally:
        await engine.dispose()
    client.o311_key = key
    return client


def _root(client: Any) -> str:
    return str(client.make_url("/open311/v2"))


async def _post(client: Any, fmt: str, **form: str) -> Any:
    return await client.post(f"/open311/v2/requests.{fmt}", data=form)


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_client_library_lists_services_posts_and_reads_back(o311: Any, db_url: str, fmt: str) -> None:
    geo = GeoReport(_root(o311), output_format=fmt)
    services = await asyncio.to_thread(geo.get_service_list)
    by_name = {s["service_name"]: s for s in services}
    assert "照明" in by_name and "助残" in by_name
    lighting = by_name["照明"]["service_code"]
    definition = await asyncio.to_thread(geo.get_service_definition, by_name["助残"]["service_code"])
    attrs = definition["attributes"]
    codes = [a["code"] for a in attrs] if fmt == "json" else [attrs["attribute"]["code"]]
    assert codes == ["item"]

    resp = await _post(
        o311,
        fmt,
        api_key=o311.o311_key,
        service_code=lighting,
        lat="22.94",
        long="113.67",
        description="村口路灯坏了，电话13826951234",
        first_name="陈",
        phone="13826951234",
    )
    assert resp.status == 200, await resp.text()
    if fmt == "json":
        created = (await resp.json())[0]
    else:
        created = {el.tag: el.text for el in ET.fromstring(await resp.text()).find("request")}
    rid, token = created["service_request_id"], created["token"]
    assert rid.startswith("MS") and token.startswith("o311-")

    got = await asyncio.to_thread(geo.get_service_request, rid)
    assert got["service_request_id"] == rid and got["status"] == "open"
    assert got["service_code"] == lighting and got["service_name"] == "照明"
    assert "13826951234" not in str(got) and "1234" not in str(
        got
    )  # not even masked: no resident words at all
    assert "路灯坏了" not in got["description"] and "照明" in got["description"]
    listed = await asyncio.to_thread(geo.get_service_requests, status="open")
    listed = listed if isinstance(listed, list) else [listed]
    assert rid in [r["service_request_id"] for r in listed]

    engine = make_engine(db_url)
    try:
        async with transaction(make_sessions(engine)) as s:
            case = (await s.exec(select(Case).where(Case.case_no == rid))).one()
    finally:
        await engine.dispose()
    assert (case.town, case.kind, case.category, case.channel) == ("厚街镇", "micro_project", "照明", "api")
    tok = await o311.get(f"/open311/v2/tokens/{token}.json")
    assert (await tok.json()) == [{"service_request_id": rid, "token": token}]


async def test_a_wish_shows_no_resident_words_in_the_public_listing(o311: Any) -> None:
    services = await (await o311.get("/open311/v2/services.json")).json()
    wish = next(s["service_code"] for s in services if s["service_name"] == "助残")
    resp = await _post(
        o311,
        "json",
        api_key=o311.o311_key,
        service_code=wish,
        address_string="虎门镇 某某路3号",
        description="我妈张秀英瘫痪在床想要轮椅",
        **{"attribute[item]": "轮椅"},
    )
    rid = (await resp.json())[0]["service_request_id"]
    got = (await (await o311.get(f"/open311/v2/requests/{rid}.json")).json())[0]
    text = str(got)
    assert "张秀英" not in text and "某某路" not in text and got["address"] == "东莞市虎门镇"


@pytest.mark.parametrize(
    ("method", "path", "form", "status"),
    [
        (
            "post",
            "/open311/v2/requests.json",
            {"service_code": "project", "lat": "22.9", "long": "113.6", "description": "x"},
            403,
        ),
        (
            "post",
            "/open311/v2/requests.xml",
            {"api_key": "dgj_000000000000_nope", "service_code": "project", "description": "x"},
            403,
        ),
        (
            "post",
            "/open311/v2/requests.json",
            {"KEY": "", "service_code": "nope", "lat": "22.9", "long": "113.6", "description": "x"},
            404,
        ),
        (
            "post",
            "/open311/v2/requests.json",
            {"KEY": "", "service_code": "project", "description": "x"},
            400,
        ),
        (
            "post",
            "/open311/v2/requests.json",
            {"KEY": "", "service_code": "project", "lat": "north", "long": "1", "description": "x"},
            400,
        ),
        (
            "post",
            "/open311/v2/requests.json",
            {"KEY": "", "service_code": "project", "lat": "40.7", "long": "-74", "description": "x"},
            400,
        ),
        ("get", "/open311/v2/requests.json?start_date=2026-13-01", None, 400),
        (
            "get",
            "/open311/v2/requests.json?start_date=2026-01-01T00:00:00Z&end_date=2026-12-01T00:00:00Z",
            None,
            400,
        ),
        ("get", "/open311/v2/requests.xml?status=pending", None, 400),
        ("get", "/open311/v2/requests/MS0.json", None, 404),
        ("get", "/open311/v2/services.json?jurisdiction_id=nyc.gov", None, 404),
        ("get", "/open311/v2/tokens/" + "o311-" + "9" * 300 + ".xml", None, 404),
    ],
)
async def test_errors_in_the_specs_format(o311: Any, method: str, path: str, form: Any, status: int) -> None:
    if form and "KEY" in form:
        form = {**{k: v for k, v in form.items() if k != "KEY"}, "api_key": o311.o311_key}
    resp = await (o311.post(path, data=form) if method == "post" else o311.get(path))
    assert resp.status == status, await resp.text()
    if path.split("?")[0].endswith(".xml"):
        error = ET.fromstring(await resp.text()).find("error")
        assert error is not None and error.findtext("code") == str(status) and error.findtext("description")
    else:
        body = await resp.json()
        assert body[0]["code"] == status and body[0]["description"]
