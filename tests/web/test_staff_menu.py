"""The staff menu against the route guards, through the real app (no browser): for every role, every page of the
menu's table is opened as that role; a page the menu shows must answer 200, a page it hides must not be one the
role's work needs (it answers 403, or is one of the few town-level pages a community worker is spared). The page
open is marked aria-current, the queue and 我认领的 (the same path) each only on their own filter."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.web.menu import DAILY, GROUPS
from tests.factories import add_staff
from tests.helpers import sign_in

ROLES = ("community_worker", "town_staff", "town_supervisor", "city_supervisor", "admin")
#: pages a community worker may open but is not shown: town-wide oversight, not their community's work
SPARED = {"/staff/town-supervision", "/staff/funds"}
NAV = re.compile(r'<nav class="snav".*?</nav>', re.S)
LINK = re.compile(r'<a href="([^"]+)"( aria-current="page")?>([^<]+)</a>')


def _menu(html: str) -> dict[str, tuple[str, bool]]:
    nav = NAV.search(html)
    assert nav, "no staff menu on the page"
    return {
        label: (href, bool(cur))
        for href, cur, label in LINK.findall(nav.group(0))
        if "/text-size" not in href
    }


@pytest.mark.parametrize("role", ROLES)
async def test_menu_shows_what_the_guards_let_in(web_client: Any, web_sessions: Any, role: str) -> None:
    town = None if role in ("city_supervisor", "admin") else "厚街镇"
    await add_staff(web_sessions, "u1", role, town=town)
    assert (await sign_in(web_client, "u1")).status == 302
    shown = _menu(await (await web_client.get("/staff/cases")).text())
    assert {"诉求", "电话回访", "我认领的", "我的账号"} <= set(shown)
    table = list(DAILY) + [item for _, items in GROUPS for item in items]
    for item in table:
        href = str(web_client.app.router[item.route].url_for()) + (f"?{item.query}" if item.query else "")
        status = (await web_client.get(href, allow_redirects=False)).status
        if item.label in shown:
            assert shown[item.label][0] == href
            assert status == 200, f"{role}: {item.label} {href} is in the menu but answers {status}"
        else:
            assert status == 403 or (role == "community_worker" and href in SPARED), (
                f"{role}: {item.label} {href} is left out of the menu but answers {status}"
            )


async def test_the_open_page_is_marked(web_client: Any, web_sessions: Any) -> None:
    await add_staff(web_sessions, "u1", "town_staff")
    assert (await sign_in(web_client, "u1")).status == 302
    for path, label in (
        ("/staff/cases", "诉求"),
        ("/staff/cases?mine=1", "我认领的"),
        ("/staff/calls", "电话回访"),
    ):
        html = await (await web_client.get(path)).text()
        marked = [name for name, (_, cur) in _menu(html).items() if cur]
        assert marked == [label], (path, marked)
        assert "当前页" not in html  # a daily page: 更多 names no page
    html = await (await web_client.get("/staff/duties")).text()
    assert [name for name, (_, cur) in _menu(html).items() if cur] == ["权责清单"]
    assert '<summary class="here">更多<span class="sr-only">（当前页：权责清单）</span></summary>' in html
    html = await (await web_client.get("/staff/cases?mine=0")).text()
    assert [name for name, (_, cur) in _menu(html).items() if cur] == ["诉求"]
