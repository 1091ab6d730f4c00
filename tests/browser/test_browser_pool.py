"""Real Chromium at 375 px: the pool list with filters, a resource's page, a case's candidate panel (top helpers
with every score component) and sending an offer from it, and the volunteer's offer page."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

import bot.pool as pool
from bot import keys
from bot.db import migrate, transaction
from bot.delivery.links import sign_link
from bot.models import Offer
from tests.factories import NOW, PASSWORD, mk_resource, mk_staff, mk_wish
from tests.helpers import CHROMIUM, CHROMIUM_ARGS, build_app, serve

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
]


@pytest.fixture
async def _l_server(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'browser.sqlite3'}"
    await migrate(url)
    # the settings the page tests always had: the development base URL, WeChat unreachable
    app = build_app(url, clock=lambda: NOW, data_dir=tmp_path, base_url="http://127.0.0.1:8080")
    runner, base = await serve(app)
    pool.POOL_CACHE.clear()
    yield app, base
    await runner.cleanup()
    pool.POOL_CACHE.clear()


async def _no_overflow(page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 376, f"page is {width}px wide at a 375px viewport"


async def test_pool_pages_and_candidate_panel_on_a_phone(_l_server):
    from playwright.async_api import async_playwright

    app, base = _l_server
    async with transaction(app[keys.SESSIONS]) as db:
        staff = await mk_staff(db, "hj-pool")
        await mk_resource(db, "R1", name="厚街轮椅互助队", openid="o-r1")
        await mk_resource(db, "R2", name="厚街长者服务社", categories=("助老", "助残"), items=())
        await mk_resource(db, "R3", name="厚街学堂", categories=("助学",), items=("课业辅导",))
        case = await mk_wish(db, owner=staff.id)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 375, "height": 740})
            await page.goto(f"{base}/staff/pool")
            await page.fill("input[name=username]", "hj-pool")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit].primary")
            await page.wait_for_url(f"{base}/staff/pool")
            assert await page.locator("#pool-list li[data-key]").count() == 3
            await _no_overflow(page)
            await page.screenshot(path=str(ARTIFACTS / "pool-01-list.png"), full_page=True)
            await page.select_option("select[name=category]", "助学")
            await page.click("#pool-filters button[type=submit]")
            await page.wait_for_load_state()
            assert await page.locator("#pool-list li[data-key]").count() == 1
            await page.click("#pool-list a")
            await page.wait_for_url(f"{base}/staff/pool/R3")
            assert "厚街学堂" in await page.content()
            await _no_overflow(page)
            await page.screenshot(path=str(ARTIFACTS / "pool-02-resource.png"), full_page=True)

            await page.goto(f"{base}/staff/cases/{case.case_no}")
            panel = page.locator("#pool")
            assert await panel.count() == 1, (
                "the staff case page must include pool/_candidates.html with pool_panel=candidates_panel(...)"
            )
            items = panel.locator("#pool-candidates > li")
            assert await items.count() == 2  # the tutoring school does not offer disability aids
            first = await items.first.inner_text()
            assert "厚街轮椅互助队" in first and "距离" in first and "可靠度" in first
            await _no_overflow(page)
            await page.screenshot(path=str(ARTIFACTS / "pool-03-candidates.png"), full_page=True)
            await page.click("#pool-offer-form button[type=submit]")
            await page.wait_for_load_state()
            assert "已向1位爱心人士发出邀请" in await page.content()
            async with app[keys.SESSIONS]() as db:
                offer = (await db.exec(select(Offer))).one()

            token = sign_link("l" * 40, "offer", offer.id, now=NOW.timestamp())
            volunteer = await browser.new_page(viewport={"width": 375, "height": 740})
            await volunteer.goto(f"{base}/offer/{token}")
            assert "139****5678" in await volunteer.content()
            await volunteer.click("button[value=accept]")
            await volunteer.wait_for_load_state()
            assert "13912345678" in await volunteer.locator("#offer-contact").inner_text()
            await _no_overflow(volunteer)
            await volunteer.screenshot(path=str(ARTIFACTS / "pool-04-volunteer.png"), full_page=True)
        finally:
            await browser.close()
