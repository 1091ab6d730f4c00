"""数据图表 in Chromium at 375 px and 1280 px: ECharts (served by the app) draws every chart, nothing is wider than
the screen, each chart has its table behind a toggle; screenshots go to test-artifacts/."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.factories import Site
from tests.helpers import ARTIFACTS, CHROMIUM, signed_in_state

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed"),
    pytest.mark.asyncio(loop_scope="module"),
]
CHARTS = (
    "chart-weekly",
    "chart-stages",
    "chart-towns",
    "chart-scores",
    "chart-stage-months",
    "chart-pool",
    "chart-league",
    "chart-map",
)


@pytest.mark.parametrize("width", [375, 1280])
async def test_every_chart_is_drawn_and_fits(site: Site, browser: Any, width: int) -> None:
    state = await signed_in_state(browser, site.base, "city-admin")
    ctx = await browser.new_context(viewport={"width": width, "height": 800}, storage_state=state)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(site.base) else None)
    try:
        await page.goto(site.base + "/staff/stats/charts")
        for ident in CHARTS:
            # ECharts renders into an <svg> inside the container; the container keeps the page's width
            await page.wait_for_selector(f"#{ident} svg", timeout=10_000)
            box = await page.locator(f"#{ident}").bounding_box()
            assert box and 0 < box["width"] <= width and box["height"] >= 200, (ident, box)
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        for section in ("weekly", "stage-months", "pool", "league", "map"):
            await page.locator(f"#{section} summary").click()
            assert await page.locator(f"#table-{section}").is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"charts-{width}.png"), full_page=True)
    finally:
        await ctx.close()
    assert errors == [] and outside == []
