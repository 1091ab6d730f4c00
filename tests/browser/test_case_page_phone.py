"""The staff case page on a phone (375×740): the resident's latest message and the actions are in the first
screen, the donor cards are folded (<details>, only the best one open), and "对接爱心资源" is one heading."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.factories import LATEST_MESSAGE, Site
from tests.helpers import ARTIFACTS, CHROMIUM, signed_in_state

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed"),
    pytest.mark.asyncio(loop_scope="module"),
]
SCREEN = {"width": 375, "height": 740}


async def test_latest_message_and_actions_in_the_first_screen(site: Site, browser: Any) -> None:
    state = await signed_in_state(browser, site.base, "hj-staff")
    ctx = await browser.new_context(viewport=SCREEN, storage_state=state)
    try:
        page = await ctx.new_page()
        await page.goto(f"{site.base}/staff/cases/{site.wish_no}")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "staff-case-first-screen.png"))
        await page.screenshot(path=str(ARTIFACTS / "staff-case-phone-full.png"), full_page=True)

        latest = page.get_by_text(LATEST_MESSAGE, exact=True)
        assert await latest.count() >= 1
        box = await latest.first.bounding_box()
        assert box and box["y"] + box["height"] <= SCREEN["height"], f"latest message at {box}"

        buttons = page.locator("#actions button[type=submit]")
        assert await buttons.count() >= 2
        first = await buttons.first.bounding_box()
        assert first and first["y"] + first["height"] <= SCREEN["height"], f"first action at {first}"
        heading = await page.locator("#actions h2").bounding_box()
        assert heading and heading["y"] < SCREEN["height"]

        # donor cards folded: five candidates, the best open, the rest closed
        cards = page.locator("#pool-candidates > li > details")
        n = await cards.count()
        assert n >= 3, n
        opened = [await cards.nth(i).evaluate("d => d.open") for i in range(n)]
        assert opened[0] and not any(opened[1:]), opened

        # one "对接爱心资源", as the pool panel's heading
        text = await page.locator("main").inner_text()
        assert text.count("对接爱心资源") == 1, text.count("对接爱心资源")
        assert await page.locator("h2", has_text="对接爱心资源").count() == 1

        # the page is no longer thousands of pixels long before the resident's reply
        height = await page.evaluate("document.documentElement.scrollHeight")
        assert await page.evaluate("document.documentElement.scrollWidth") <= SCREEN["width"]
        print(
            f"\ncase page at 375 px: {height} px long; latest message at y={box['y']:.0f}, first action at y={first['y']:.0f}"
        )
    finally:
        await ctx.close()


async def test_desktop_keeps_the_pool_beside_the_actions(site: Site, browser: Any) -> None:
    state = await signed_in_state(browser, site.base, "hj-staff")
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900}, storage_state=state)
    try:
        page = await ctx.new_page()
        await page.goto(f"{site.base}/staff/cases/{site.wish_no}")
        await page.screenshot(path=str(ARTIFACTS / "staff-case-desktop.png"))
        actions = await page.locator("#actions").bounding_box()
        pool = await page.locator("#pool").bounding_box()
        assert actions and pool
        assert pool["x"] > actions["x"] + actions["width"] - 1, (actions, pool)  # a second column
        assert pool["y"] < SCREEN["height"], pool  # and in the first screen
    finally:
        await ctx.close()
