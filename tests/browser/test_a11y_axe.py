"""axe-core (the npm package, injected by Playwright; no CDN) on every page of the site at 375 px and 1280 px, in
normal and in large type (大字).

WCAG 2.0/2.1 A and AA rules; any serious or critical violation fails, naming the rule and the elements."""

from __future__ import annotations

import os
from typing import Any

import pytest
import pytest_asyncio

from tests.factories import Site
from tests.helpers import ARTIFACTS, CHROMIUM, require_axe, signed_in_state

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed"),
    pytest.mark.asyncio(loop_scope="module"),
]
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
WIDTHS = (375, 1280)
TEXT_SIZES = ("normal", "big")


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    await page.add_script_tag(path=str(require_axe()))
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", TAGS
    )
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} elements): {v['help']}")
        for node in v["nodes"][:8]:
            summary = (node.get("failureSummary") or "").replace("\n", " ")[:160]
            lines.append(f"    {' '.join(node['target'])}  {node['html'][:120]}  — {summary}")
    return "\n".join(lines)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def states(site: Site, browser: Any) -> dict[str, Any]:
    return {
        "staff": await signed_in_state(browser, site.base, "hj-staff"),
        "admin": await signed_in_state(browser, site.base, "city-admin"),
    }


@pytest.mark.parametrize("text", TEXT_SIZES)
@pytest.mark.parametrize("width", WIDTHS)
async def test_every_page_passes_axe(
    site: Site, browser: Any, states: dict[str, Any], width: int, text: str
) -> None:
    """Every page, in normal type and in large type (the 大字 cookie, which the server turns into html.big)."""
    failures = []
    counts = {}
    size = {"width": width, "height": 740 if width < 800 else 900}
    pages = {}
    for role in (None, "staff", "admin"):
        ctx = await browser.new_context(
            viewport=size, storage_state=states[role] if role else None, bypass_csp=True
        )
        if text == "big":
            await ctx.add_cookies([{"name": "dgj_text", "value": "big", "url": site.base}])
        pages[role] = await ctx.new_page()
    try:
        for name, path, role in site.pages:
            page = pages[role]
            await page.goto(site.base + path)
            assert "/staff/login" not in page.url or role is None, f"{name}: not signed in"
            big = "big" in (await page.get_attribute("html", "class") or "")
            assert big == (text == "big"), f"{name}: large type {'off' if big else 'not applied'}"
            if not name.startswith("error"):
                assert "错误代码" not in await page.content(), f"{name}: an error page instead of the page"
            wide = await page.evaluate("document.documentElement.scrollWidth")
            if wide > width:  # axe does not check reflow: large type must not push the page sideways
                failures.append(
                    f"{name} {path} at {width}px, {text} type: the page scrolls sideways ({wide}px)"
                )
            found = await axe_violations(page)
            counts[name] = sum(len(v["nodes"]) for v in found)
            if found:
                failures.append(f"{name} {path} at {width}px, {text} type:\n{describe(found)}")
    finally:
        for page in pages.values():
            await page.context.close()
    print(f"\naxe at {width}px, {text} type, serious/critical elements per page: {counts}")
    assert not failures, "\n\n".join(failures)


async def test_the_community_page_at_phone_width(site: Site, browser: Any, states: dict[str, Any]) -> None:
    """The registry page as an admin sees it on a phone (375 px): the town's communities with their poster links
    and the admin forms, no sideways scrolling, axe clean; the screenshot is kept for review."""
    ctx = await browser.new_context(
        viewport={"width": 375, "height": 740}, storage_state=states["admin"], bypass_csp=True
    )
    page = await ctx.new_page()
    try:
        await page.goto(site.base + "/staff/communities?town=厚街镇")
        assert await page.locator("h1").inner_text() == "村（社区）名单 厚街镇"
        links = page.locator("a[href$='/poster.png']")
        assert await links.count() >= 10  # the seeded communities of 厚街镇, each with its poster
        assert "新围社区" in await page.locator("main").inner_text()
        assert await page.evaluate("document.documentElement.scrollWidth") <= 375
        found = await axe_violations(page)
        assert not found, describe(found)
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "staff-communities-375.png"), full_page=False)
    finally:
        await ctx.close()
