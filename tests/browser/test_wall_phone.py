"""圆梦墙 on a phone (375×740) in Chromium: the wall, a wish, a claim made through the form and the donor's page;
screenshots under test-artifacts/. Type is at least 18 px, every control at least 44 px tall, nothing scrolls
sideways, and the seeded resident's details appear nowhere."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.factories import Site
from tests.helpers import ARTIFACTS, CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed"),
    pytest.mark.asyncio(loop_scope="module"),
]
SCREEN = {"width": 375, "height": 740}
CONTROLS = "main button, main input:not([type=radio]):not([type=checkbox]):not([type=hidden]), main select, main textarea"
RESIDENT_DETAILS = ("陈伯", "新围村三巷8号", "13912345678", "MS2026")


async def _check(page: Any, name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}-375.png"), full_page=True)
    assert await page.evaluate("document.documentElement.scrollWidth") <= SCREEN["width"], name
    size = await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert size >= 18, (name, size)
    small = await page.evaluate(
        "() => [...document.querySelectorAll(SEL)].filter(e => e.getBoundingClientRect().height < 44)"
        ".map(e => e.outerHTML.slice(0, 80))".replace("SEL", repr(CONTROLS))
    )
    assert small == [], (name, small)
    text = await page.locator("main").inner_text()
    for secret in RESIDENT_DETAILS:
        assert secret not in text, (name, secret)
    return text


async def test_the_wall_a_wish_a_claim_and_the_donors_page_at_375(site: Site, browser: Any) -> None:
    ctx = await browser.new_context(viewport=SCREEN)
    try:
        page = await ctx.new_page()
        await page.goto(f"{site.base}/wall")
        text = await _check(page, "wall")
        assert "一位行动不便的老人需要一辆轮椅" in text and "已等待 3 天" in text
        await page.get_by_role("link", name="一位行动不便的老人需要一辆轮椅").click()
        assert page.url.endswith(f"/wall/{site.wall_id}")
        await _check(page, "wall-wish")
        await page.get_by_label("爱心企业").check()
        await page.get_by_label("姓名或单位名称").fill("东莞爱心五金厂")
        await page.get_by_label("联系电话（只给工作人员看）").fill("13600002222")
        await page.get_by_label("想对受助人说的话（可不填，圆梦时转达）").fill("祝您出行顺利")
        await page.get_by_role("button", name="认领这个心愿").click()
        assert "/wall/claims/" in page.url
        text = await _check(page, "wall-claim")
        assert "等待工作人员确认" in text and await page.locator("#what").count() == 0
        await page.goto(f"{site.base}/wall/claims/{site.wall_claim}")
        text = await _check(page, "wall-donor")
        assert "书包" in text and "上门送达" in text
        await page.goto(f"{site.base}/wall")
        assert "一位行动不便的老人需要一辆轮椅" not in await page.locator("main").inner_text()  # reserved
    finally:
        await ctx.close()
