"""The government's pages in real Chromium at 375 px (a phone inside WeChat): the policy suggestion on the case
page and the league table of towns fit the screen (the table scrolls inside its own box, the page does not), the
table sorts by a tap on its header; screenshots kept in test-artifacts/ for the README."""

from __future__ import annotations

import os
from typing import Any

import pytest
import pytest_asyncio

from tests.factories import Site
from tests.helpers import ARTIFACTS, CHROMIUM, signed_in_state

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed"),
    pytest.mark.asyncio(loop_scope="module"),
]
PHONE = {"width": 375, "height": 740}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def states(site: Site, browser: Any) -> dict[str, Any]:
    return {
        "staff": await signed_in_state(browser, site.base, "hj-staff"),
        "admin": await signed_in_state(browser, site.base, "city-admin"),
    }


async def _page(browser: Any, state: Any) -> Any:
    ctx = await browser.new_context(viewport=PHONE, storage_state=state, device_scale_factor=2)
    return await ctx.new_page()


async def test_policy_suggestion_on_the_case_page_at_375(
    site: Site, browser: Any, states: dict[str, Any]
) -> None:
    page = await _page(browser, states["staff"])
    try:
        await page.goto(f"{site.base}/staff/cases/{site.wish_no}")
        box = page.locator("#gov")
        await box.scroll_into_view_if_needed()
        suggestions = page.locator("#policy-suggestions li")
        assert await suggestions.count() >= 1
        assert "残疾人辅助器具适配" in await suggestions.first.inner_text()
        assert await page.locator("#route-policy-form").is_visible()
        width = await page.evaluate("document.documentElement.scrollWidth")
        wide = await page.evaluate(
            "() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 376)"
            ".slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + e.getBoundingClientRect().right)"
        )
        assert width <= PHONE["width"], f"the case page scrolls sideways: {width}px {wide}"
        ARTIFACTS.mkdir(exist_ok=True)
        await box.screenshot(path=str(ARTIFACTS / "gov-01-policy-suggestion.png"))
    finally:
        await page.context.close()


async def test_league_table_at_375(site: Site, browser: Any, states: dict[str, Any]) -> None:
    page = await _page(browser, states["admin"])
    try:
        await page.goto(f"{site.base}/staff/league")
        assert await page.locator("#league tr.city").count() == 1
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the league page scrolls sideways: {width}px"
        wrap = page.locator(".table-wrap").first
        assert await wrap.evaluate("el => el.scrollWidth > el.clientWidth")  # the table scrolls in its box
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "gov-02-league.png"))
        await page.locator('th[data-key="received"] a').click()
        await page.wait_for_load_state()
        assert "sort=received" in page.url
        assert await page.locator('th[data-key="received"]').get_attribute("aria-sort") == "descending"
    finally:
        await page.context.close()


async def test_micro_project_pages_at_375(site: Site, browser: Any, states: dict[str, Any]) -> None:
    """The staff's project page and its public 公示 fit a phone; screenshots of both."""
    for name, state, path, must in (
        ("gov-04-project-staff", states["staff"], f"/staff/projects/{site.micro_project}", "#stage-form"),
        ("gov-05-project-public", None, f"/public/projects/{site.micro_project}", "#public-budget"),
    ):
        page = await _page(browser, state)
        try:
            await page.goto(f"{site.base}{path}")
            assert await page.locator("#project-title").inner_text() == "新围村巷口修复路灯"
            assert await page.locator(must).count() == 1
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} scrolls sideways: {width}px"
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        finally:
            await page.context.close()
    page = await _page(browser, None)
    try:
        await page.goto(f"{site.base}/public/projects/{site.micro_project}")
        assert await page.locator("#public-budget").inner_text() == "13,000.00"
        assert await page.locator("#public-spent").inner_text() == "5,000.00"
        assert "将加装遮光罩" in await page.locator("#answers").inner_text()
    finally:
        await page.context.close()
