"""Real Chromium at a phone-sized viewport: sign in, filter the queue, claim, ask the resident, complete."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from sqlmodel import col, select

from bot import keys
from bot.cases.access import create_staff
from bot.cases.numbering import create_case
from bot.db import migrate, transaction
from bot.models import Case, CaseEvent, Outbox, Resident
from tests.helpers import CHROMIUM, CHROMIUM_ARGS, build_app, serve

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
PASSWORD = "Passw0rd!x"

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
    yield app, base
    await runner.cleanup()


async def _seed(app: web.Application) -> tuple[str, str]:
    async with transaction(app[keys.SESSIONS]) as db:
        await create_staff(
            db,
            username="hj-staff",
            password=PASSWORD,
            role="town_staff",
            town="厚街镇",
            display_name="厚街小陈",
        )
        resident = Resident(openid="o-browser", phone="13812345678")
        db.add(resident)
        await db.flush()
        wish = await create_case(
            db,
            kind="micro_wish",
            description="奶奶腿脚不便，想申请一辆轮椅",
            town="厚街镇",
            resident_id=resident.id,
            item="轮椅",
            community="新围社区",
            now=NOW,
        )
        wish.status = "accepted"
        project = await create_case(
            db,
            kind="micro_project",
            description="巷口路灯坏了",
            town="厚街镇",
            resident_id=resident.id,
            community="新围社区",
            now=NOW,
        )
        project.status = "accepted"
        far = await create_case(
            db, kind="micro_wish", description="虎门的助听器", town="虎门镇", resident_id=resident.id, now=NOW
        )
        far.status = "accepted"
        return wish.case_no, project.case_no


async def test_staff_flow_on_a_phone(_l_server):
    from playwright.async_api import async_playwright

    app, base = _l_server
    wish_no, project_no = await _seed(app)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        try:
            page = await browser.new_page(viewport={"width": 375, "height": 740})
            await page.goto(f"{base}/staff/cases")
            assert "/staff/login" in page.url
            await page.fill("input[name=username]", "hj-staff")
            await page.fill("input[name=password]", PASSWORD)
            await page.screenshot(path=str(ARTIFACTS / "staff-01-login.png"))
            await page.click("button[type=submit].primary")
            await page.wait_for_url(f"{base}/staff/cases")
            assert await page.locator(f'[data-case="{wish_no}"]').count() == 1
            assert "虎门的助听器" not in await page.content()
            # nothing overflows the phone's width
            assert await page.evaluate("document.documentElement.scrollWidth") <= 375
            await page.screenshot(path=str(ARTIFACTS / "staff-02-queue.png"), full_page=True)

            await page.select_option("select[name=kind]", "micro_wish")
            await page.check("input[name=unclaimed]")
            await page.click("#filter-submit")
            await page.wait_for_load_state()
            assert "kind=micro_wish" in page.url
            assert await page.locator(f'[data-case="{wish_no}"]').count() == 1
            assert await page.locator(f'[data-case="{project_no}"]').count() == 0
            await page.screenshot(path=str(ARTIFACTS / "staff-03-filtered.png"), full_page=True)

            await page.click(f'[data-case="{wish_no}"] a')
            await page.wait_for_url(f"{base}/staff/cases/{wish_no}")
            assert "138****5678" in await page.content()
            await page.click("#act-claim")
            await page.wait_for_load_state()
            assert "认领成功" in await page.content()
            assert (await page.text_content("#status")).strip() == "已认领"
            await page.screenshot(path=str(ARTIFACTS / "staff-04-claimed.png"), full_page=True)

            await page.fill("#ask-form input[name=question]", "请问家门口的门宽大约多少厘米？")
            await page.click("#act-ask")
            await page.wait_for_load_state()
            assert "请问家门口的门宽大约多少厘米？" in await page.text_content("#timeline")
            await page.screenshot(path=str(ARTIFACTS / "staff-05-asked.png"), full_page=True)

            await page.click("#act-match")
            await page.wait_for_load_state()
            await page.click("#act-start")
            await page.wait_for_load_state()
            await page.fill("#complete-form textarea[name=note]", "轮椅已送到奶奶家中")
            await page.click("#act-complete")
            await page.wait_for_load_state()
            assert (await page.text_content("#status")).strip() == "已办结"
            assert await page.evaluate("document.documentElement.scrollWidth") <= 375
            await page.screenshot(path=str(ARTIFACTS / "staff-06-completed.png"), full_page=True)
        finally:
            await browser.close()

    async with app[keys.SESSIONS]() as db:
        case = (await db.exec(select(Case).where(Case.case_no == wish_no))).one()
        assert case.status == "completed" and case.awaiting_resident is False
        kinds = [e.kind for e in await db.exec(select(CaseEvent).where(CaseEvent.case_id == case.id))]
        assert kinds.count("question") == 1
        texts = [
            o.text
            for o in await db.exec(
                select(Outbox)
                .where(Outbox.case_id == case.id, Outbox.kind == "progress")
                .order_by(col(Outbox.id))
            )
        ]
        assert any("门宽" in t for t in texts) and any("轮椅已送到奶奶家中" in t for t in texts)
    for name in ("01-login", "02-queue", "03-filtered", "04-claimed", "05-asked", "06-completed"):
        assert (ARTIFACTS / f"staff-{name}.png").stat().st_size > 5000
