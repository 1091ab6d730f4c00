"""圆梦墙 on a phone (375×740) in Chromium: the wall, a wish, a claim made through the form and the donor's page;
screenshots under test-artifacts/. Type is at least 18 px, every control at least 44 px tall, nothing scrolls
sideways, and the seeded resident's details appear nowhere."""

from __future__ import annotations

import os
from typing import Any

import pytest
from sqlmodel import select

from bot import keys
from bot.db import transaction
from bot.models import Staff
from bot.pool.wall import publish
from reference.case_numbers import CASE_NO
from tests.factories import NOW, Site, mk_wish
from tests.helpers import ARTIFACTS, CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed"),
    pytest.mark.asyncio(loop_scope="module"),
]
SCREEN = {"width": 375, "height": 740}
CONTROLS = "main button, main input:not([type=radio]):not([type=checkbox]):not([type=hidden]), main select, main textarea"
RADIO = "一位独居老人想要一台收音机"
RESIDENT_DETAILS = ("陈伯", "新围村三巷8号", "13912345678")  # and no case number (CASE_NO), whatever its year


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
    assert not CASE_NO.search(text), (name, text)
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


async def test_near_me_a_group_claim_and_the_certificate_at_375(site: Site, browser: Any) -> None:
    async with transaction(
        site.app[keys.SESSIONS]
    ) as db:  # one more open wish in 厚街 (the first test took one)
        worker = (await db.exec(select(Staff).where(Staff.username == "hj-staff"))).one()
        case = await mk_wish(db, owner=worker.id, item="收音机", category="助老")
        await publish(db, case=case, staff=worker, text=RADIO, handover="community_centre", now=NOW)
    # the phone shares a location in 厚街 (Playwright's geolocation, permission granted): the nearest town's wishes
    ctx = await browser.new_context(
        viewport=SCREEN, geolocation={"latitude": 22.945, "longitude": 113.672}, permissions=["geolocation"]
    )
    try:
        page = await ctx.new_page()
        await page.goto(f"{site.base}/wall?town=虎门镇")
        assert await page.locator("[data-wish]").count() == 0
        await page.get_by_role("button", name="用我的位置找附近的心愿").click()
        await page.wait_for_url("**/wall?lat=22.95&lon=113.67")
        text = await _check(page, "wall-near")
        assert "离您最近的是厚街镇" in text and "不会保存" in text
        assert RADIO in text

        # a party branch claims two wishes at once; one of them was taken a moment before by someone else
        await page.get_by_role("link", name="一起认领多个心愿").click()
        await _check(page, "wall-group")
        await page.get_by_label(f"{RADIO}（厚街镇 · 助老）").check()
        await page.get_by_label("党支部").check()
        await page.get_by_label("单位名称", exact=True).fill("厚街某村党支部")
        await page.get_by_label("联系电话（只给工作人员看）").fill("13600006666")
        await page.get_by_role("button", name="认领所选心愿").click()
        assert "/wall/groups/" in page.url
        text = await _check(page, "wall-group-claimed")
        assert "一共认领了 1 个心愿" in text and "等待工作人员确认" in text

        # the donor's page of a fulfilled wish: the resident's thanks and the certificate to download
        await page.goto(f"{site.base}/wall/claims/{site.wall_done}")
        text = await _check(page, "wall-donor-fulfilled")
        assert "助听器很好用，谢谢你们！" in text and "下载感谢信图片" in text
        async with page.expect_download() as info:
            await page.get_by_role("link", name="下载感谢信图片").click()
        download = await info.value
        path = ARTIFACTS / "wall-certificate.png"
        await download.save_as(str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        await ctx.close()
