"""扫一扫 on the simulator's phone page in real Chromium at 375 px: staff download a community's poster (the bot
asks the simulated WeChat for the community's permanent QR code), a person playing a resident opens 扫一扫 on the
phone page, sees that code in the list (read from /_sim/qrcodes), scans it — the simulator pushes the subscribe
event to the bot's webhook over HTTP — and the greeting names the community; the case the resident then files
in the chat has channel qrcode and that community. The page with the panel open is axe clean (0 serious or
critical) and does not scroll sideways."""

from __future__ import annotations

import os
import re
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot import keys
from bot.models import Case, Community
from tests.factories import PASSWORD, TOWN, add_staff
from tests.helpers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, System, login, require_axe

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed"),
]
CASE_NO = re.compile(r"MS\d{8}-\d{4}")
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


async def _poster(system: System, community: Community) -> None:
    """A town staff member downloads the community's poster, as on /staff/communities."""
    await add_staff(system.app[keys.SESSIONS], "hj-poster", "town_staff", town=TOWN)
    async with aiohttp.ClientSession(
        base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as http:
        await login(http, "hj-poster", PASSWORD)
        async with http.get(f"/staff/communities/{community.id}/poster.png") as resp:
            assert resp.status == 200 and resp.content_type == "image/png"


async def _serious(page: Any) -> list[str]:
    await page.add_script_tag(path=str(require_axe()))
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", TAGS
    )
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def test_scanning_a_community_code_on_the_phone_page(keyword_system: System) -> None:
    from playwright.async_api import async_playwright

    system = keyword_system
    sessions = system.app[keys.SESSIONS]
    async with sessions() as db:
        community = (
            await db.exec(select(Community).where(Community.town == TOWN, Community.name == "新围社区"))
        ).scalar_one()
    openid = f"oPhoneScan{os.urandom(4).hex()}"
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 375, "height": 740})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{system.sim_url}/phone?openid={openid}")

            # before any poster is printed the account has no code: the panel says so
            await page.click("#scan-open")
            assert await page.get_attribute("#scan-open", "aria-expanded") == "true"
            await page.wait_for_selector("#scan-empty:not([hidden])")
            assert await page.locator(".scan-code").count() == 0
            await page.click("#scan-open")  # closed again

            await _poster(system, community)
            await page.click("#scan-open")
            code = page.locator(".scan-code")
            await code.first.wait_for()
            assert await code.count() == 1
            assert await code.inner_text() == f"扫描 村（社区）二维码 · 编号 {community.id}"
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, width
            assert await _serious(page) == []
            await page.screenshot(path=str(ARTIFACTS / "phone-scan-375.png"))

            bots = page.locator(".msg.bot")

            async def next_bot_text(action: Any) -> str:
                n = await bots.count()
                await action()
                await page.wait_for_function(
                    f"document.querySelectorAll('.msg.bot').length > {n}", timeout=20_000
                )
                return await bots.nth(n).inner_text()

            greeting = await next_bot_text(code.click)
            assert "厚街镇新围社区" in greeting, greeting
            assert await page.locator("#scan-panel").is_hidden()
            assert await page.inner_text("#subscribe-btn") == "取消关注"  # scanning followed the account

            async def say(text: str) -> str:
                async def typed() -> None:
                    await page.fill("#text-input", text)
                    await page.click("#send-btn")

                return await next_bot_text(typed)

            assert "同意" in await say("我爸中风了走不了路，想要一辆轮椅")  # no town said: the code told it
            await say("同意")
            summary = await say("不用")
            assert "镇街：厚街镇" in summary, summary
            done = await say("确认")
            case_no = CASE_NO.search(done)
            assert case_no, done
            await page.screenshot(path=str(ARTIFACTS / "phone-scan-case.png"), full_page=True)
            assert errors == []
        finally:
            await browser.close()
    async with sessions() as db:
        case = (await db.exec(select(Case).where(Case.case_no == case_no.group(0)))).scalar_one()
    assert (case.channel, case.town, case.community_id, case.community) == (
        "qrcode",
        TOWN,
        community.id,
        "新围社区",
    )
