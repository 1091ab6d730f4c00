"""The resident-facing pages in Chromium at 375 px, as an older reader uses them: 18 px type, 44 px targets,
a label on every control, visible focus, the 大字 switch (also with JavaScript off), forced-colours mode; and
screenshots of each page in normal and large-text mode (test-artifacts/, for the README)."""

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
PHONE = {"width": 375, "height": 740}
RESIDENT_PAGES = (
    "resident-cases",
    "resident-case",
    "survey",
    "volunteer-offer",
    "volunteer-offer-accepted",
    "volunteer-tasks",
    "public-home",
    "error-403",
)

MEASURE = """() => {
  const out = {body: parseFloat(getComputedStyle(document.body).fontSize), lang: document.documentElement.lang,
               small: [], targets: [], unlabelled: []};
  const visible = el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const t = walker.currentNode; const el = t.parentElement;
    if (!t.textContent.trim() || !el || !visible(el) || el.closest('.sr-only')) continue;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < 16) out.small.push(`${el.tagName.toLowerCase()}.${el.className} ${size}px "${t.textContent.trim().slice(0, 20)}"`);
  }
  for (const el of document.querySelectorAll('a, button, select, textarea, summary, input:not([type=hidden])')) {
    if (!visible(el) || el.classList.contains('skip')) continue;
    const box = (el.type === 'radio' || el.type === 'checkbox') ? (el.closest('label') || el) : el;
    const r = box.getBoundingClientRect();
    if (r.height < 44) out.targets.push(`${el.tagName.toLowerCase()}#${el.id} "${(el.textContent || el.name || '').trim().slice(0, 20)}" ${Math.round(r.height)}px high`);
    if (['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName)) {
      const named = (el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
      if (!named) out.unlabelled.push(`${el.tagName.toLowerCase()}[name=${el.name}]`);
    }
  }
  return out;
}"""


def _path(site: Site, name: str) -> str:
    return next(path for n, path, _ in site.pages if n == name)


@pytest.mark.parametrize("big", [False, True], ids=["normal", "large"])
async def test_resident_pages_are_large_and_labelled(site: Site, browser: Any, big: bool) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    ctx = await browser.new_context(viewport=PHONE)
    if big:
        host = site.base.split("//")[1].split(":")[0]
        await ctx.add_cookies([{"name": "dgj_text", "value": "big", "domain": host, "path": "/"}])
    problems = []
    try:
        page = await ctx.new_page()
        for name in RESIDENT_PAGES:
            await page.goto(site.base + _path(site, name))
            title = await page.title()
            assert ("无法打开" in title) == name.startswith("error"), (name, title)
            m = await page.evaluate(MEASURE)
            want = 22 if big else 18
            if m["lang"] != "zh-CN":
                problems.append(f"{name}: lang={m['lang']!r}")
            if m["body"] < want:
                problems.append(f"{name}: body text {m['body']}px, want ≥ {want}px")
            problems += [f"{name}: text under 16px: {s}" for s in m["small"]]
            problems += [f"{name}: touch target under 44px: {s}" for s in m["targets"]]
            problems += [f"{name}: control without a label: {s}" for s in m["unlabelled"]]
            if await page.evaluate("document.documentElement.scrollWidth") > PHONE["width"]:
                problems.append(f"{name}: wider than the phone")
            mode = "large" if big else "normal"
            await page.screenshot(path=str(ARTIFACTS / f"a11y-{name}-{mode}.png"), full_page=True)
    finally:
        await ctx.close()
    assert not problems, "\n".join(problems)


async def test_large_text_switch_works_without_javascript_and_persists(site: Site, browser: Any) -> None:
    ctx = await browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = await ctx.new_page()
        await page.goto(site.base + _path(site, "resident-cases"))  # JavaScript is off: measure the layout
        before = (await page.locator("h1").bounding_box())["height"]
        switch = page.locator("#textsize")
        assert (await switch.inner_text()).startswith("大字")
        assert await switch.get_attribute("aria-pressed") == "false"
        await switch.click()
        await page.wait_for_load_state()
        assert "/my/cases" in page.url  # back on the same page
        assert await page.locator("html.big").count() == 1
        after = (await page.locator("h1").bounding_box())["height"]
        assert after > before * 1.1, (before, after)
        assert await page.locator("#textsize").get_attribute("aria-pressed") == "true"
        # remembered on the next page, another page family
        await page.goto(site.base + _path(site, "survey"))
        assert await page.locator("html.big").count() == 1
        await page.click("#textsize")
        await page.wait_for_load_state()
        assert await page.locator("html.big").count() == 0
    finally:
        await ctx.close()


async def test_focus_is_visible(site: Site, browser: Any) -> None:
    ctx = await browser.new_context(viewport=PHONE)
    try:
        page = await ctx.new_page()
        await page.goto(site.base + _path(site, "survey"))
        seen = []
        for _ in range(6):
            await page.keyboard.press("Tab")
            seen.append(
                await page.evaluate(
                    """() => { const el = document.activeElement; const s = getComputedStyle(el);
                    return [el.tagName + '#' + el.id, s.outlineStyle, parseFloat(s.outlineWidth)]; }"""
                )
            )
        assert seen[0][0] == "A#", seen  # the skip link comes first
        for tag, style, width in seen:
            assert style != "none" and width >= 2, (tag, style, width)
    finally:
        await ctx.close()


async def test_readable_in_forced_colours(site: Site, browser: Any) -> None:
    ctx = await browser.new_context(viewport=PHONE, forced_colors="active")
    try:
        page = await ctx.new_page()
        for name in ("resident-case", "survey", "volunteer-offer"):
            await page.goto(site.base + _path(site, name))
            assert await page.evaluate("matchMedia('(forced-colors: active)').matches")
            checks = await page.evaluate(
                """() => [...document.querySelectorAll('h1, .badge, button, label, p')].filter(el => {
                    const r = el.getBoundingClientRect(); return r.width > 0 && el.textContent.trim();
                  }).map(el => {
                    let bg = 'rgba(0, 0, 0, 0)', n = el;
                    while (n && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) {
                      bg = getComputedStyle(n).backgroundColor; n = n.parentElement; }
                    const s = getComputedStyle(el);
                    return {what: el.tagName + '.' + el.className + ' ' + el.textContent.trim().slice(0, 12),
                            fg: s.color, bg, border: parseFloat(s.borderTopWidth), badge: el.matches('.badge, button')};
                  })"""
            )
            assert checks, name
            for c in checks:
                assert c["fg"] != c["bg"], (name, c)  # text never takes its background's colour
                if c["badge"]:
                    assert c["border"] >= 1, (name, c)  # badges and buttons keep an outline when colours go
            await page.screenshot(path=str(ARTIFACTS / f"a11y-{name}-forced-colours.png"), full_page=True)
    finally:
        await ctx.close()
