"""Issue 2's walk-through in real Chromium: the resident types on the simulator's phone page (which signs and
encrypts like WeChat and posts to the bot over real HTTP), the real Rasa understands, a case number comes back,
and `查询进度` lists the case. A phone-sized viewport; screenshots are kept as test artifacts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import CHROMIUM, CHROMIUM_ARGS, System

pytestmark = [pytest.mark.browser, pytest.mark.rasa]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


async def test_wheelchair_wish_on_the_phone_page(chat: System) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 375, "height": 812})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{chat.sim_url}/phone?openid=oBrowserPhone000000000001")

            async def say(text: str) -> str:
                bubbles = page.locator(".chat > *")
                n = await bubbles.count()
                await page.fill("#text-input", text)
                await page.click("#send-btn")
                await page.wait_for_function(
                    f"document.querySelectorAll('.chat > *').length >= {n + 2}", timeout=20_000
                )
                return await bubbles.nth(n + 1).inner_text()

            assert "同意" in await say("我爸中风后走不了路，想要一辆轮椅，我们住在厚街镇")
            assert "电话" in await say("同意")
            summary = await say("13812345678")
            assert "厚街镇" in summary and "138****5678" in summary
            done = await say("确认")
            case_no = re.search(r"MS\d{8}-\d{4}", done)
            assert case_no, done
            progress = await say("查询进度")
            assert case_no.group(0) in progress and "已提交" in progress
            await page.screenshot(path=str(ARTIFACTS / "phone-walkthrough.png"), full_page=True)
            assert errors == []
        finally:
            await browser.close()
