"""The registry of communities (村/社区) and its QR codes, through the real parts: the migration that maps today's
free-text community values (on a SQLite file written at the previous revision), the `python -m bot communities`
command in a subprocess, and a resident scanning a community's QR code in the simulator, which pushes the event
to the bot over HTTP; the case is filed by the same chat and staff download the poster over HTTP."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from bot import keys
from bot.models import AuditLog, Case, Community, Resident, Staff
from tests.factories import PASSWORD, TOWN, add_staff
from tests.helpers import ROOT, System, csrf, login

CASE_NO = re.compile(r"MS\d{8}-\d{4}")


def _insert(con: sqlite3.Connection, table: str, values: dict[str, Any]) -> int:
    """A row written with plain SQL at the old revision: every NOT NULL column without a default gets a plain
    value, the test gives the ones that matter."""
    for _, name, kind, notnull, default, pk in con.execute(f'PRAGMA table_info("{table}")'):
        if notnull and default is None and not pk and name not in values:
            kind = kind.upper()
            values[name] = (
                0
                if "INT" in kind or "BOOL" in kind
                else "2026-03-01 02:00:00.000000"
                if "DATE" in kind or "TIME" in kind
                else "{}"
                if "JSON" in kind or name in ("data", "media", "components")
                else "[]"
                if name in ("categories", "items", "towns_served")
                else f"x{name}-{os.urandom(3).hex()}"
            )
    cols = ", ".join(f'"{k}"' for k in values)
    cur = con.execute(
        f'INSERT INTO "{table}" ({cols}) VALUES ({", ".join("?" * len(values))})', list(values.values())
    )
    return int(cur.lastrowid or 0)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "communities", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def test_the_migration_maps_free_text_communities_and_reports_what_it_cannot(
    tmp_path: Path, caplog: Any
) -> None:
    from alembic import command

    from bot.db import alembic_config, make_engine, make_sessions

    path = tmp_path / "old.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0013")
    con = sqlite3.connect(path)
    written = {
        "新围社区": _insert(
            con, "case", {"case_no": "MS20260301-0001", "town": TOWN, "community": "新围社区"}
        ),
        "新围": _insert(con, "case", {"case_no": "MS20260301-0002", "town": TOWN, "community": "新围"}),
        "河田村委会": _insert(
            con, "case", {"case_no": "MS20260301-0003", "town": TOWN, "community": "河田村委会"}
        ),
        "幸福里小区": _insert(
            con, "case", {"case_no": "MS20260301-0004", "town": TOWN, "community": "幸福里小区"}
        ),
        # a real community name, but of another town: never mapped across towns
        "虎门的新围": _insert(
            con, "case", {"case_no": "MS20260301-0005", "town": "虎门镇", "community": "新围社区"}
        ),
    }
    worker = _insert(
        con,
        "staff",
        {"username": "cw-old", "role": "community_worker", "town": TOWN, "community": "涌口社区"},
    )
    # rows that refer to the altered tables must survive their rebuild (SQLite batch mode copies the table)
    con.execute('UPDATE "case" SET claimed_by_id = ? WHERE id = ?', (worker, written["新围"]))
    _insert(
        con,
        "caseevent",
        {"case_id": written["新围社区"], "actor_type": "staff", "kind": "note", "note": "核实"},
    )
    resident = _insert(con, "resident", {"openid": "o-old-1"})
    _insert(con, "conversation", {"resident_id": resident, "state": "idle"})
    con.commit()
    con.close()

    with caplog.at_level(logging.WARNING, logger="alembic.communities"):
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")

    engine = make_engine(url)
    try:
        async with make_sessions(engine)() as db:
            ids = {
                c.name: c.id
                for c in (await db.exec(select(Community).where(Community.town == TOWN))).scalars()
            }
            cases = {c.id: c for c in (await db.exec(select(Case))).scalars()}
            staff = await db.get(Staff, worker)
    finally:
        await engine.dispose()
    assert cases[written["新围社区"]].community_id == ids["新围社区"]
    assert cases[written["新围"]].community_id == ids["新围社区"]
    assert cases[written["河田村委会"]].community_id == ids["河田社区"]
    assert cases[written["幸福里小区"]].community_id is None
    assert cases[written["虎门的新围"]].community_id is None
    assert cases[written["幸福里小区"]].community == "幸福里小区"  # the text stays for display
    assert staff is not None and staff.community_id == ids["涌口社区"]
    con = sqlite3.connect(path)
    try:
        kept = [
            con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in ("caseevent", "conversation")
        ]
    finally:
        con.close()
    assert kept == [1, 1] and cases[written["新围"]].claimed_by_id == worker
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "幸福里小区" in logged and "虎门镇" in logged and "新围社区'" in logged
    assert "河田村委会" not in logged

    out = _cli("--database-url", url, "unmapped")
    assert out.returncode == 1, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("未匹配")]
    assert lines == ["未匹配\t诉求\t厚街镇\t幸福里小区\t1条", "未匹配\t诉求\t虎门镇\t新围社区\t1条"]


async def test_csv_import_adds_good_rows_and_reports_each_bad_one(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'import.sqlite3'}"
    csv_file = tmp_path / "communities.csv"
    csv_file.write_text(
        "镇街,名称,类型\n"
        "桥头,桥头社区,社区\n"  # a new one (short town name)
        "厚街镇,新围社区,社区\n"  # already in the seed
        "东莞镇,某某社区,社区\n"  # no such town
        "谢岗镇,,村\n"  # empty name
        "谢岗镇,南面村,社区\n"  # kind and name disagree
        "谢岗镇,南面<b>村,村\n"  # markup
        "桥头镇,桥头社区,社区\n"  # repeated in the file
        "谢岗镇,南面村\n"  # a column missing
        f"谢岗镇,{'长' * 40}村,村\n"  # too long
        "谢岗镇,南面村,村\n",  # good
        encoding="utf-8",
    )
    out = _cli("--database-url", url, "import", str(csv_file))
    assert out.returncode == 1, out.stderr
    report = out.stdout
    assert "新增 2 个村（社区），已存在 1 个，拒绝 7 行" in report
    for line, words in [
        (4, "东莞镇"),
        (5, "名称为空"),
        (6, "应以“社区”结尾"),
        (7, "只能包含汉字"),
        (8, "重复"),
        (9, "应有3列"),
        (10, "超过32个字"),
    ]:
        assert re.search(rf"^第{line}行：.*{words}", report, re.M), (line, report)

    listed = _cli("--database-url", url, "list", "--town", "谢岗镇")
    assert listed.returncode == 0 and [r.split("\t")[2] for r in listed.stdout.splitlines()] == ["南面村"]
    again = _cli("--database-url", url, "import", str(csv_file), "--dry-run")
    assert "新增 0 个村（社区），已存在 3 个" in again.stdout

    binary = tmp_path / "x.csv"
    binary.write_bytes(b"\xff\xfe\x00t\x00o")
    bad = _cli("--database-url", url, "import", str(binary))
    assert bad.returncode == 2 and "UTF-8" in bad.stdout


async def _community(system: System, town: str, name: str) -> Community:
    async with system.app[keys.SESSIONS]() as db:
        row = (
            await db.exec(select(Community).where(Community.town == town, Community.name == name))
        ).scalar_one()
        return row


async def _staff_http(system: System, username: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    await login(http, username, PASSWORD)
    return http


async def test_a_scan_of_a_community_code_files_the_case_in_that_community(keyword_system: System) -> None:
    system = keyword_system
    sessions = system.app[keys.SESSIONS]
    await add_staff(sessions, "hj-staff", "town_staff", town=TOWN)
    await add_staff(sessions, "hm-staff", "town_staff", town="虎门镇")
    community = await _community(system, TOWN, "新围社区")

    # staff of the town print the poster: the bot asks WeChat (the simulator) for the code the first time
    hj = await _staff_http(system, "hj-staff")
    hm = await _staff_http(system, "hm-staff")
    try:
        page = await hj.get("/staff/communities")
        assert page.status == 200 and "新围社区" in await page.text()
        png = await hj.get(f"/staff/communities/{community.id}/poster.png")
        assert png.status == 200 and png.content_type == "image/png"
        body = await png.read()
        from PIL import Image

        assert Image.open(io.BytesIO(body)).size == (1240, 1754)
        pdf = await hj.get(f"/staff/communities/{community.id}/poster.pdf")
        assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF")
        # another town's staff: neither that poster nor a change of the registry
        other = await hm.get(f"/staff/communities/{community.id}/poster.png")
        assert other.status == 404
        assert "新围社区" not in await (await hm.get("/staff/communities")).text()
        for path in ("/staff/communities/999999/poster.png", f"/staff/communities/{community.id}/poster.gif"):
            assert (await hj.get(path)).status == 404
    finally:
        await hj.close()
        await hm.close()
    async with sessions() as db:
        community = await db.get(Community, community.id)
        audits = (
            (await db.exec(select(AuditLog).where(AuditLog.action == "community_poster"))).scalars().all()
        )
    assert community is not None and community.qr_ticket and community.qr_url
    assert sorted(a.detail for a in audits) == ["厚街镇新围社区 pdf", "厚街镇新围社区 png"]
    assert system.sim.calls["qrcode"] == 1  # the permanent code is created once, then kept
    async with system.http.get(f"{system.sim_url}/_sim/qrcodes") as resp:
        assert await resp.json() == [
            {
                "ticket": community.qr_ticket,
                "url": community.qr_url,
                "scene": f"c:{community.id}",
                "permanent": True,
            }
        ]
    async with system.http.get(
        f"{system.sim_url}/cgi-bin/showqrcode", params={"ticket": community.qr_ticket}
    ) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"

    # a new resident scans the printed code: subscribe with EventKey qrscene_c:<id>, over HTTP to the webhook
    openid = f"o-scan-{os.urandom(4).hex()}"
    async with system.http.post(
        f"{system.sim_url}/_sim/scan", json={"openid": openid, "url": community.qr_url}
    ) as resp:
        scanned = await resp.json()
    assert scanned["event"] == "subscribe" and scanned["event_key"] == f"qrscene_c:{community.id}"
    assert "厚街镇新围社区" in scanned["reply"], scanned

    user = system.user(openid)
    r = await user.send_text("我爸中风了走不了路，想要一辆轮椅")  # no town said: the code told it
    assert "同意" in r.text, r.text
    r = await user.send_text("同意")
    r = await user.send_text("不用")
    assert "镇街：厚街镇" in r.text, r.text
    r = await user.send_text("确认")
    case_no = CASE_NO.search(r.text)
    assert case_no, r.text
    async with sessions() as db:
        case = (await db.exec(select(Case).where(Case.case_no == case_no.group(0)))).scalar_one()
        resident = (await db.exec(select(Resident).where(Resident.openid == openid))).scalar_one()
    assert (case.channel, case.town, case.community_id, case.community) == (
        "qrcode",
        TOWN,
        community.id,
        "新围社区",
    )
    assert resident.scan_community_id is None  # used up: the next case is not coloured by it

    # a follower scanning again gets SCAN with the bare scene; a scene naming no community changes nothing
    async with system.http.post(
        f"{system.sim_url}/_sim/scan", json={"openid": openid, "ticket": community.qr_ticket}
    ) as resp:
        again = await resp.json()
    assert again["event"] == "SCAN" and again["event_key"] == f"c:{community.id}"
    assert "新围社区" in again["reply"]
    await asyncio.sleep(1.1)  # events are deduplicated by sender + CreateTime (seconds): a later second
    r = await user.send_event("SCAN", key="c:999999")
    assert "欢迎回来" in r.text


async def test_a_resource_takes_its_community_from_its_town_list(web_client: Any, web_sessions: Any) -> None:
    from tests.factories import mk_resource

    await add_staff(web_sessions, "hj-pool", "town_staff", town=TOWN)
    async with web_sessions() as db:
        await mk_resource(db, "HJC1", town=TOWN)
        await db.commit()
        ids = {
            (c.town, c.name): c.id
            for c in (
                await db.exec(select(Community).where(Community.name.in_(["新围社区", "太平社区"])))
            ).scalars()
        }
    await login(web_client, "hj-pool", PASSWORD)
    token = await csrf(web_client, "/staff/pool/HJC1")
    form = {
        "csrf_token": token,
        "name": "厚街爱心商行",
        "contact": "陈先生",
        "phone": "13800001234",
        "kind": "enterprise",
        "categories": "助残",
        "items": "轮椅",
        "home_town": TOWN,
        "towns_served": TOWN,
        "capacity_open": "2",
        "capacity_month": "4",
        "max_fund": "",
        "available": "1",
    }
    page = await (await web_client.get("/staff/pool/HJC1")).text()
    assert (
        f'<option value="{ids[(TOWN, "新围社区")]}"' in page and "太平社区" not in page
    )  # the town's list only
    for bad in (str(ids[("虎门镇", "太平社区")]), "999999", "x1", "-3"):  # another town's, none, malformed
        resp = await web_client.post("/staff/pool/HJC1/edit", data={**form, "community_id": bad})
        assert resp.status == 400 and "请从厚街镇的村（社区）名单中选择" in await resp.text(), bad
    resp = await web_client.post(
        "/staff/pool/HJC1/edit", data={**form, "community_id": str(ids[(TOWN, "新围社区")])}
    )
    assert resp.status == 200 and "已保存" in await resp.text()
    async with web_sessions() as db:
        from bot.models import Resource

        row = (await db.exec(select(Resource).where(Resource.key == "HJC1"))).scalar_one()
    assert row.community_id == ids[(TOWN, "新围社区")]


async def test_mapping_again_after_an_import_on_both_databases(sessions: Any) -> None:
    """`communities map` (bot.cases.communities.map_free_text, the rule of migration 0014) on SQLite and
    PostgreSQL: values matching nothing stay unmapped and are reported until the registry learns them."""
    from bot.cases.communities import import_csv, map_free_text
    from bot.db import transaction
    from tests.factories import NOW, add_rows, case_row

    await add_rows(
        sessions,
        case_row(community="新围村委会"),
        case_row(community="南面村", town="谢岗镇"),
        case_row(community="南面村", town="谢岗镇"),
        case_row(community=None),
    )
    async with transaction(sessions) as db:
        before = await map_free_text(db)
    assert [(u.table, u.town, u.value, u.rows) for u in before] == [("case", "谢岗镇", "南面村", 2)]
    async with transaction(sessions) as db:
        report = await import_csv(db, data="town,name,kind\n谢岗镇,南面村,村\n".encode(), now=NOW)
        assert report.ok and report.added == ["谢岗镇南面村"]
        after = await map_free_text(db)
    assert after == []
    async with sessions() as db:
        mapped = {
            (c.town, c.community): c.community_id
            for c in (await db.exec(select(Case).where(Case.community.is_not(None)))).scalars()
        }
        ids = {(c.town, c.name): c.id for c in (await db.exec(select(Community))).scalars()}
    assert mapped == {
        (TOWN, "新围村委会"): ids[(TOWN, "新围社区")],
        ("谢岗镇", "南面村"): ids[("谢岗镇", "南面村")],
    }


async def test_the_simulated_qrcode_create_answers_as_wechat_does(keyword_system: System) -> None:
    """The simulator's ``qrcode/create`` with WeChat's documented bodies and error codes, over HTTP."""
    system = keyword_system
    settings = system.settings
    async with system.http.get(
        f"{system.sim_url}/cgi-bin/token",
        params={
            "grant_type": "client_credential",
            "appid": settings.wechat_appid,
            "secret": settings.wechat_secret,
        },
    ) as resp:
        token = (await resp.json())["access_token"]

    async def create(body: dict[str, Any], access_token: str = token) -> dict[str, Any]:
        async with system.http.post(
            f"{system.sim_url}/cgi-bin/qrcode/create", params={"access_token": access_token}, json=body
        ) as resp:
            result: dict[str, Any] = await resp.json()
            return result

    permanent = {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "c:1"}}}
    first, second = await create(permanent), await create(permanent)
    assert first["ticket"] == second["ticket"] and first["url"].startswith("http://weixin.qq.com/q/")
    assert "expire_seconds" not in first
    temporary = await create(
        {"action_name": "QR_SCENE", "expire_seconds": 9_999_999, "action_info": {"scene": {"scene_id": 7}}}
    )
    assert temporary["expire_seconds"] == 2_592_000 and temporary["ticket"] != first["ticket"]
    for body, errcode in [
        ({"action_name": "QR_FOREVER", "action_info": {"scene": {"scene_str": "c:1"}}}, 40052),
        ({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": ""}}}, 40053),
        ({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "x" * 65}}}, 40053),
        ({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100_001}}}, 40053),
        ({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": True}}}, 40053),
        ({"action_name": "QR_LIMIT_SCENE", "action_info": "c:1"}, 40053),
    ]:
        assert (await create(body))["errcode"] == errcode, body
    assert (await create(permanent, access_token="not-a-token"))["errcode"] == 40001
    async with system.http.get(f"{system.sim_url}/cgi-bin/showqrcode", params={"ticket": "gQnope"}) as resp:
        assert resp.status == 404
    async with system.http.post(
        f"{system.sim_url}/_sim/scan", json={"openid": "o-x", "ticket": "gQnope"}
    ) as resp:
        assert resp.status == 404


async def test_the_queue_filters_by_the_picked_community_id(web_client: Any, web_sessions: Any) -> None:
    from tests.factories import add_case

    await add_staff(web_sessions, "hj-queue", "town_staff", town=TOWN)
    mine = await add_case(web_sessions, community="新围社区", desc="新围的轮椅")
    other = await add_case(web_sessions, community="河田社区", desc="河田的路灯")
    assert mine.community_id is not None and other.community_id not in (None, mine.community_id)
    await login(web_client, "hj-queue", PASSWORD)
    page = await (await web_client.get("/staff/cases")).text()
    assert f'<option value="{mine.community_id}"' in page and "太平社区" not in page  # the town's list, by id
    filtered = await (await web_client.get(f"/staff/cases?community={mine.community_id}")).text()
    assert mine.case_no in filtered and other.case_no not in filtered
    for junk in ("新围社区", "-1", "9" * 12):  # a name, a negative or an absurd id filter nothing away
        resp = await web_client.get("/staff/cases", params={"community": junk})
        assert resp.status == 200 and other.case_no in await resp.text()
