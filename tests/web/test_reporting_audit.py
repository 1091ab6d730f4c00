"""The audit log (操作日志) through the real app: Chinese labels instead of the stored codes, filters by action,
staff member, town and dates, and a town supervisor held to their own town whatever the URL asks."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from bot import keys
from bot.cases.access import audit
from bot.db import transaction
from bot.reporting.audit import ACTION_LABELS
from tests.factories import NOW, OTHER, PASSWORD, TOWN, mk_staff, mk_wish
from tests.helpers import app_client, login

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def client(db_url, tmp_path, aiohttp_client):
    return await app_client(db_url, tmp_path, aiohttp_client, now=NOW)


def visible(html: str) -> str:
    """The text a reader sees: no tags, attributes or option values."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def entries(html: str) -> list[str]:
    ul = re.search(r'<ul class="audit" id="audit">(.*?)</ul>', html, re.S)
    assert ul, html[:500]
    return [visible(li) for li in re.findall(r"<li[^>]*>(.*?)</li>", ul.group(1), re.S)]


async def seed(client) -> dict[str, int]:
    """Staff in two towns, each with actions on three days; returns the staff ids."""
    async with transaction(client.app[keys.SESSIONS]) as db:
        a = await mk_staff(db, "worker_a", "town_staff", town=TOWN)
        b = await mk_staff(db, "worker_b", "town_staff", town=OTHER)
        await mk_staff(db, "sup_a", "town_supervisor", town=TOWN)
        await mk_staff(db, "city", "city_supervisor", town=None)
        case = await mk_wish(db, town=TOWN)
        for staff, days in ((a, 0), (a, 3), (b, 0)):
            at = NOW - timedelta(days=days)
            await audit(db, staff=staff, action="case_complete", case=case, now=at, detail="已送到家")
            await audit(db, staff=staff, action="reveal_phone", case=case, now=at, detail="查看完整号码")
        await audit(db, staff=a, action="stats_export", now=NOW, detail="导出统计 厚街镇")
        return {"a": a.id, "b": b.id}


async def test_the_log_reads_in_chinese_not_in_codes(client):
    await seed(client)
    await login(client, "city", PASSWORD)
    html = await (await client.get("/staff/audit")).text()
    text = "\n".join(entries(html))
    assert "诉求：办结" in text and "查看完整号码" in text and "导出统计表" in text
    for code in ("case_complete", "reveal_phone", "stats_export"):
        assert code not in visible(html)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"action": "reveal_phone"}, 3),
        ({"action": "case_complete", "staff": "A"}, 2),
        ({"staff": "A", "from": "2026-03-02", "to": "2026-03-02"}, 3),  # China dates: NOW is 03-02 10:00
        ({"from": "2026-02-20", "to": "2026-02-28"}, 2),
        ({"town": OTHER}, 2),
        ({}, 8),  # the seven above and the reader's own sign-in
    ],
)
async def test_city_supervisor_filters(client, query, expected):
    ids = await seed(client)
    await login(client, "city", PASSWORD)
    query = {k: str(ids["a"]) if v == "A" else v for k, v in query.items()}
    resp = await client.get("/staff/audit", params=query)
    assert resp.status == 200
    assert len(entries(await resp.text())) == expected


async def test_town_supervisor_sees_only_their_town(client):
    ids = await seed(client)
    await login(client, "sup_a", PASSWORD)
    html = await (await client.get("/staff/audit", params={"town": OTHER})).text()
    rows = entries(html)
    assert len(rows) == 6 and not any("worker_b" in r for r in rows)  # worker_a's five and sup_a's sign-in
    assert "worker_b" not in html  # not even in the staff filter
    resp = await client.get("/staff/audit", params={"staff": str(ids["b"])}, headers={"Accept": "text/html"})
    assert resp.status == 400 and "工作人员" in visible(await resp.text())


async def test_unknown_action_is_refused(client):
    await seed(client)
    await login(client, "city", PASSWORD)
    resp = await client.get("/staff/audit", params={"action": "drop_table"}, headers={"Accept": "text/html"})
    assert resp.status == 400 and "操作类型" in visible(await resp.text())


def test_every_action_the_code_writes_has_a_label():
    """Read the action codes from the source (literal codes at every audit call, and the ops of the f-string
    codes as the forms send them), not from the label table."""
    written: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for m in re.finditer(r"(?:await audit\(|AuditLog\()", source):
            call = source[m.end() : m.end() + 600]
            literal = re.search(r'\baction="([a-z_]+)"', call)
            if literal:
                written.add(literal.group(1))
    pages = (
        ("staff/case.html", "case_"),
        ("admin/staff.html", "admin_staff_"),
        ("admin/categories.html", "admin_category_"),
        ("gov/project.html", "project_"),
        ("gov/round.html", "round_"),
        ("gov/town_supervision.html", "town_supervision_"),
        ("admin/communities.html", "community_"),
    )
    # every action code built from a form's op (action=f"prefix_{op}") has its form page in the list above
    prefixes = {
        m.group(1)
        for path in (ROOT / "bot").rglob("*.py")
        for m in re.finditer(r'action=f"([a-z_]+_)\{op\}"', path.read_text(encoding="utf-8"))
    }
    assert prefixes and prefixes <= {prefix for _, prefix in pages}, prefixes
    for template, prefix in pages:
        html = (ROOT / "bot/web/templates" / template).read_text(encoding="utf-8")
        written |= {prefix + op for op in re.findall(r'name="(?:action|op)" value="([a-z_]+)"', html)}
    assert written, "no audit calls found: the scan is broken"
    assert sorted(written - set(ACTION_LABELS)) == []
