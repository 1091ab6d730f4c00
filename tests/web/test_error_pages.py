"""Every 4xx/5xx page a person can reach is in Chinese and styled (lang zh-CN, the site's stylesheet, a way
back); 405 (a reloaded POST address) too, keeping its Allow header. The favicon is served, the brand link of
the resident, survey and volunteer pages points to a page that exists, and the 大字 switch remembers the choice."""

from __future__ import annotations

import re

import pytest

from tests.factories import NOW
from tests.helpers import app_client

HTML = {"Accept": "text/html,application/xhtml+xml"}
ENGLISH = re.compile(
    r"Not Found|Forbidden|Method Not Allowed|Bad Request|Internal Server Error|\b\d{3}: [A-Z]"
)


@pytest.fixture
async def client(sqlite_url, tmp_path, aiohttp_client):
    return await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)


@pytest.mark.parametrize(
    ("method", "path", "status", "words"),
    [
        ("GET", "/no-such-page", 404, "页面不存在"),
        ("GET", "/my/cases?t=forged", 403, "链接已失效"),
        ("GET", "/survey/forged", 403, "链接已失效"),
        ("GET", "/v/tasks?t=forged", 403, "链接无效或已过期"),
        ("GET", "/staff/cases/MS20260302-0001/phone", 405, "不能直接打开或刷新"),
        ("GET", "/staff/cases/MS20260302-0001/act", 405, "请从页面上的按钮操作"),
        ("PUT", "/public", 405, "请从页面上的按钮操作"),
        ("GET", "/my/cases/not-a-case-number?t=forged", 403, "链接已失效"),
        ("GET", "/public?town=nowhere", 400, "镇街"),
        ("GET", "/public/notices/x1", 404, "页面不存在"),
    ],
)
async def test_error_pages_are_chinese_and_styled(client, method, path, status, words) -> None:
    resp = await client.request(method, path, headers=HTML, allow_redirects=False)
    body = await resp.text()
    assert resp.status == status, body[:300]
    assert resp.content_type == "text/html"
    assert '<html lang="zh-CN"' in body and '<link rel="stylesheet" href="/static/app.css">' in body
    assert words in body
    assert f"错误代码 {status}" in body
    assert not ENGLISH.search(body), ENGLISH.search(body)
    assert re.search(r'<a class="brand" href="(/public|/staff/cases)"', body)
    if status == 405:
        assert "POST" in resp.headers.get("Allow", "") or method == "PUT"


async def test_api_callers_still_get_plain_errors(client) -> None:
    resp = await client.get("/no-such-page", headers={"Accept": "application/json"})
    assert resp.status == 404 and "<html" not in await resp.text()


async def test_favicon_and_home_exist(client) -> None:
    icon = await client.get("/favicon.ico")
    assert icon.status == 200 and icon.content_type == "image/png"
    assert (await icon.read()).startswith(b"\x89PNG")
    svg = await client.get("/static/favicon.svg")
    assert svg.status == 200
    home = await client.get("/", headers=HTML)
    assert home.status == 200 and str(home.url).endswith("/public")


async def test_brand_link_of_every_non_staff_page_resolves(client) -> None:
    for path in ("/no-such-page", "/my/cases?t=forged", "/survey/forged", "/v/offer/forged", "/public"):
        body = await (await client.get(path, headers=HTML)).text()
        href = re.search(r'<a class="brand" href="([^"]+)"', body)
        assert href, path
        target = await client.get(href.group(1).replace("&amp;", "&"), headers=HTML)
        assert target.status == 200, (path, href.group(1))


async def test_large_text_switch_is_remembered_without_javascript(client) -> None:
    page = await (await client.get("/public", headers=HTML)).text()
    assert '<html lang="zh-CN">' in page
    switch = re.search(r'<a class="textsize"[^>]*href="([^"]+)"', page)
    assert switch and "size=big" in switch.group(1)
    resp = await client.get(switch.group(1).replace("&amp;", "&"), allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/public"
    assert resp.cookies["dgj_text"].value == "big"
    again = await (await client.get("/public/notices", headers=HTML)).text()
    assert '<html lang="zh-CN" class="big">' in again and 'aria-pressed="true"' in again
    back = await client.get("/text-size?size=normal&next=/public", allow_redirects=False)
    assert back.status == 302
    assert '<html lang="zh-CN">' in await (await client.get("/public", headers=HTML)).text()


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
async def test_large_text_switch_never_leaves_the_site(client, target) -> None:
    resp = await client.get("/text-size", params={"size": "big", "next": target}, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/public"
