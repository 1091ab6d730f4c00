"""The donor's sign-up confirmation with the one-time WeChat QR code, in Chromium at 375 px and 1280 px, normal and
large type: the real app and the WeChat simulator over HTTP, the form filled and sent as a person does; the code and
the QR image are shown (the image from the app itself), nothing scrolls sideways, axe finds no serious or critical
violation."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.helpers import CHROMIUM, System, require_axe, running_system

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed"),
    pytest.mark.asyncio(loop_scope="module"),
]
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    from bot.db import migrate  # only this module's system needs a migrated file of its own

    tmp = tmp_path_factory.mktemp("donorqr")
    url = f"sqlite+aiosqlite:///{tmp / 'donor.sqlite3'}"
    await migrate(url)
    async with running_system(url, Path(tmp)) as s:
        yield s


@pytest.mark.parametrize(("width", "text"), [(375, "normal"), (375, "big"), (1280, "normal")])
async def test_the_confirmation_shows_the_qr_code(
    system: System, browser: Any, width: int, text: str
) -> None:
    ctx = await browser.new_context(viewport={"width": width, "height": 740 if width < 800 else 900})
    if text == "big":
        await ctx.add_cookies([{"name": "dgj_text", "value": "big", "url": system.bot_url}])
    page = await ctx.new_page()
    try:
        await page.goto(system.bot_url + "/donate")
        await page.check("input[name=kind][value=individual]")
        await page.fill("#name", f"热心街坊{width}{text}")
        await page.fill("#contact", "陈姐")
        await page.fill("#phone", f"137000{width:04d}{len(text)}")
        await page.select_option("#town", "厚街镇")
        await page.check("input[name=categories][value=生活物资]")
        await page.fill("#items", "大米")
        await page.fill("#capacity", "2")
        await page.click("button[type=submit]")
        await page.wait_for_selector("#bind-code")
        qr = page.locator("#bind-qr")
        assert await qr.is_visible()
        assert (await qr.get_attribute("src") or "").startswith("data:image/png;base64,")
        # the image decoded in the browser: a real picture, inside the screen
        assert await qr.evaluate("img => img.complete && img.naturalWidth > 100")
        box = await qr.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        wide = await page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"the page scrolls sideways ({wide}px at {width}px)"
        # axe through the DevTools protocol: the page keeps its own CSP, which the QR image was shown under
        await page.evaluate(require_axe().read_text(encoding="utf-8") + "\n;window.axe = axe; true")
        result = await page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
            TAGS,
        )
        serious = [
            f"{v['id']}: {v['help']} {[n['html'][:100] for n in v['nodes'][:3]]}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not serious, serious
    finally:
        await ctx.close()
