"""The staff menu in real Chromium, for every staff role, on a phone (375×740) and a desktop (1280 px), in normal
and large type (the 大字 cookie): the bar stays within two lines and the work starts on the first screen; the menu
holds exactly the pages each role is allowed (a list written here from the programme's roles, not read from the
menu's table), each of which answers 200 for that role while the hidden admin pages answer 403; the current page
is marked; 更多 opens without JavaScript and from the keyboard; axe finds nothing serious with the menu open."""

from __future__ import annotations

import os
from typing import Any

import pytest
import pytest_asyncio

from bot import keys
from tests.factories import Site, add_staff
from tests.helpers import ARTIFACTS, CHROMIUM, require_axe, signed_in_state

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed"),
    pytest.mark.asyncio(loop_scope="module"),
]
PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 900}

EVERYONE = {
    "诉求": "/staff/cases",
    "电话回访": "/staff/calls",
    "我认领的": "/staff/cases?mine=1",
    "代录诉求": "/staff/cases/new",
    "消息发送": "/staff/outbox",
    "圆梦墙认领": "/staff/wall",
    "资源线索": "/staff/leads",
    "村（社区）": "/staff/communities",
    "政策": "/staff/policies",
    "微实事": "/staff/projects",
    "权责清单": "/staff/duties",
    "统计": "/staff/stats",
    "图表": "/staff/stats/charts",
    "办理时限": "/staff/admin/deadlines",
    "我的账号": "/staff/account",
}
TOWN_LEVEL = {
    "事件预警": "/staff/warnings",
    "爱心资源库": "/staff/pool",
    "批量派单": "/staff/batch",
    "镇街督办": "/staff/town-supervision",
    "资金": "/staff/funds",
}
SUPERVISING = {
    "排名": "/staff/league",
    "公告": "/staff/notices",
    "操作日志": "/staff/audit",
    "删除申请": "/staff/erasure",
}
ADMINISTERING = {
    "账号管理": "/staff/admin/staff",
    "类别管理": "/staff/admin/categories",
    "开放接口": "/staff/admin/api-keys",
}
#: role → (username, the menu it must see); written by hand from who does what in the programme
ROLES: dict[str, tuple[str, dict[str, str]]] = {
    "community_worker": ("xw-worker", EVERYONE),
    "town_staff": ("hj-staff", EVERYONE | TOWN_LEVEL),
    "town_supervisor": ("hj-lead", EVERYONE | TOWN_LEVEL | SUPERVISING),
    "city_supervisor": ("city-lead", EVERYONE | TOWN_LEVEL | SUPERVISING),
    "admin": ("city-admin", EVERYONE | TOWN_LEVEL | SUPERVISING | ADMINISTERING),
}
ALL_PAGES = EVERYONE | TOWN_LEVEL | SUPERVISING | ADMINISTERING
BAR_MAX = 110  # px: two rows of 44 px targets, the gap and the bar's padding


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def states(site: Site, browser: Any) -> dict[str, Any]:
    sessions = site.app[keys.SESSIONS]
    await add_staff(sessions, "xw-worker", "community_worker")
    await add_staff(sessions, "city-lead", "city_supervisor", town=None)
    return {role: await signed_in_state(browser, site.base, user) for role, (user, _) in ROLES.items()}


async def _context(browser: Any, site: Site, state: Any, size: dict[str, int], big: bool, **kw: Any) -> Any:
    ctx = await browser.new_context(viewport=size, storage_state=state, bypass_csp=True, **kw)
    if big:
        await ctx.add_cookies([{"name": "dgj_text", "value": "big", "url": site.base}])
    return ctx


async def _menu(page: Any) -> dict[str, str]:
    """label → href of every page link in the menu (daily links and 更多, open or not)."""
    rows = await page.eval_on_selector_all(
        "nav.snav a", "els => els.map(a => [a.textContent.trim(), a.getAttribute('href')])"
    )
    return {label: href for label, href in rows if not href.startswith("/text-size")}


@pytest.mark.parametrize("big", [False, True], ids=["normal", "big"])
@pytest.mark.parametrize("role", list(ROLES))
async def test_menu_on_a_phone(
    site: Site, browser: Any, states: dict[str, Any], role: str, big: bool
) -> None:
    _, expected = ROLES[role]
    ctx = await _context(browser, site, states[role], PHONE, big)
    page = await ctx.new_page()
    try:
        await page.goto(site.base + "/staff/cases")
        assert (await page.get_attribute("html", "class") or "") == ("big" if big else "")
        menu = await _menu(page)
        assert menu == expected, f"{role}: menu differs from the pages the role may open"
        for label, href in menu.items():
            resp = await ctx.request.get(site.base + href, max_redirects=0)
            assert resp.status == 200, f"{role}: {label} {href} answered {resp.status}"
        for label, href in ALL_PAGES.items():
            if label not in expected and href.startswith(("/staff/admin/", "/staff/audit", "/staff/erasure")):
                resp = await ctx.request.get(site.base + href, max_redirects=0)
                assert resp.status == 403, f"{role}: hidden {label} {href} answered {resp.status}"
        bar = await page.locator("header.topbar").bounding_box()
        h1 = await page.locator("main h1").first.bounding_box()
        assert bar and h1
        print(
            f"\n{role} {'big' if big else 'normal'} 375px: bar {bar['height']:.0f}px, h1 at {h1['y']:.0f}px"
        )
        assert bar["height"] <= BAR_MAX, f"{role}: the bar takes {bar['height']}px"
        assert h1["y"] + h1["height"] <= PHONE["height"] / 2, f"{role}: the page starts at {h1['y']}px"
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # the daily links mark the page open; 更多's links stay out of sight until it is opened
        assert await page.locator("nav.snav .daily a[aria-current=page]").inner_text() == "诉求"
        assert not await page.locator("nav.snav .mpanel").is_visible()
        if role == "community_worker":
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / f"staff-nav-375{'-big' if big else ''}.png"))
        # 更多 opened from the keyboard: every group fits the screen's width
        await page.locator("nav.snav summary").focus()
        await page.keyboard.press("Enter")
        panel = page.locator("nav.snav .mpanel")
        assert await panel.is_visible()
        box = await panel.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert await page.locator("nav.snav summary").get_attribute("aria-expanded") in (None, "true")
        if role == "admin" and not big:
            await page.screenshot(path=str(ARTIFACTS / "staff-nav-375-open.png"))
        found = await _axe(page)
        assert not found, found
    finally:
        await ctx.close()


@pytest.mark.parametrize("big", [False, True], ids=["normal", "big"])
async def test_menu_is_one_row_on_a_desktop(
    site: Site, browser: Any, states: dict[str, Any], big: bool
) -> None:
    ctx = await _context(browser, site, states["admin"], DESKTOP, big)
    page = await ctx.new_page()
    try:
        await page.goto(site.base + "/staff/funds")
        bar = await page.locator("header.topbar").bounding_box()
        assert bar and bar["height"] <= 60, bar
        # the page open sits in 更多: the link is marked and the summary names it to a screen reader
        assert (
            await page.locator("nav.snav .mpanel a[aria-current=page]").get_attribute("href")
            == "/staff/funds"
        )
        assert "当前页：资金" in await page.locator("nav.snav summary").inner_text()
        assert await page.locator("nav.snav .daily a[aria-current]").count() == 0
        await page.locator("nav.snav summary").click()
        assert await page.get_by_role("link", name="账号管理").is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"staff-nav-1280{'-big' if big else ''}.png"))
        found = await _axe(page)
        assert not found, found
    finally:
        await ctx.close()


async def test_menu_without_javascript(site: Site, browser: Any, states: dict[str, Any]) -> None:
    """更多 opens with JavaScript off; a link in it leads to its page; the 大字 switch in it sets large type."""
    ctx = await _context(browser, site, states["town_staff"], PHONE, False, java_script_enabled=False)
    page = await ctx.new_page()
    try:
        await page.goto(site.base + "/staff/calls")
        assert await page.locator("nav.snav .daily a[aria-current=page]").inner_text() == "电话回访"
        await page.locator("nav.snav summary").click()
        await page.get_by_role("link", name="权责清单").click()
        await page.wait_for_url("**/staff/duties")
        await page.locator("nav.snav summary").click()
        await page.get_by_role("link", name="大字：关").click()
        await page.wait_for_url("**/staff/duties")
        assert await page.get_attribute("html", "class") == "big"
        await page.locator("nav.snav summary").click()
        assert await page.get_by_role("link", name="大字：开").is_visible()
    finally:
        await ctx.close()


async def _axe(page: Any) -> list[str]:
    await page.add_script_tag(path=str(require_axe()))
    result = await page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes'][:5]]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
