"""微实事 as projects through the real app over HTTP (SQLite and PostgreSQL): a resident's 微实事 case becomes a
proposal, is visited with a photo, chosen at the 联席会议, approved with a budget drawn partly from the 慈善会 fund
(the ledger moves), publicised with an objection that must be answered before work may start, carried out in
stages with photos, accepted, and shown on the public page with the same numbers as the ledger and nothing of the
resident; a resident's second vote in a round is refused."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from aiohttp import FormData
from PIL import Image
from sqlmodel import col, select

from bot import keys
from bot.db import transaction
from bot.delivery.links import sign_link
from bot.models import (
    Case,
    CaseEvent,
    FundAccount,
    FundEntry,
    Outbox,
    Project,
    ProjectFunding,
    ProjectObjection,
    ProjectRound,
    ProjectStage,
    ProjectVote,
    Resident,
    Staff,
)
from tests.factories import NOW, TOWN, add_case, add_resident, add_staff
from tests.helpers import build_app, csrf, sign_in


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):  # noqa: ANN204
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(db_url, aiohttp_client, tmp_path, clock):
    return await aiohttp_client(build_app(db_url, clock=clock, data_dir=tmp_path))


@pytest.fixture
def sessions(client):
    return client.app[keys.SESSIONS]


def png(color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="PNG")
    return buf.getvalue()


def flash_of(page: str) -> str:
    m = re.search(r'<div class="flash[^"]*" role="status">([^<]*)</div>', page)
    return m.group(1) if m else ""


async def post(
    client, page: str, action: str, fields: dict[str, str], files: list[tuple[str, bytes, str]] = ()
):
    """Post a form of ``page`` (its CSRF token) to ``action``; returns the flash message shown after the redirect."""
    token = await csrf(client, page)
    if files:
        data = FormData()
        for k, v in {**fields, "csrf_token": token}.items():
            data.add_field(k, v)
        for name, body, ctype in files:
            data.add_field("photos", body, filename=name, content_type=ctype)
    else:
        data = {**fields, "csrf_token": token}
    resp = await client.post(action, data=data)
    assert resp.status == 200, await resp.text()
    return flash_of(await resp.text())


async def resident_texts(sessions, openid: str) -> list[str]:
    async with sessions() as db:
        rows = await db.exec(select(Outbox).where(Outbox.openid == openid).order_by(col(Outbox.id)))
        return [r.text for r in rows.all()]


async def _bind(sessions, staff_id: int, openid: str) -> None:
    async with transaction(sessions) as db:
        row = await db.get(Staff, staff_id)
        row.openid = openid


async def _setup_round(client, sessions, *, objection_days: str = "3") -> tuple[int, Case]:
    """A supervisor, a 慈善会 allocation of 5,000 元, a round, and a resident's 微实事 case turned into a proposal."""
    assert (await sign_in(client, "hj-lead")).status == 302
    msg = await post(
        client, "/staff/funds", "/staff/funds", {"source": "charity", "amount": "5000", "note": "慈善会拨付"}
    )
    assert "5,000.00" in msg
    msg = await post(
        client,
        "/staff/projects",
        "/staff/projects",
        {"op": "round", "name": "2026年第一批", "objection_days": objection_days},
    )
    assert msg == "已建立批次「2026年第一批」"
    case = await add_case(
        sessions, kind="micro_project", status="accepted", desc="翠园路那段路灯坏了好久，晚上很黑"
    )
    waiting = (await (await client.get("/staff/projects")).text()).split('id="cases-to-propose"')[1]
    assert case.case_no in waiting.split("</ul>")[0]  # the resident's 微实事 waits to be collected
    page = await (await client.get(f"/staff/cases/{case.case_no}")).text()
    round_id = re.search(r'<select id="cp-round" name="round_id"><option value="(\d+)"', page).group(1)
    msg = await post(
        client,
        f"/staff/cases/{case.case_no}",
        f"/staff/cases/{case.case_no}/project",
        {
            "round_id": round_id,
            "title": "翠园路段修复路灯",
            "community": "新围社区",
            "category": "照明",
            "summary": "翠园路段三盏路灯损坏，夜间行人多，拟更换为LED路灯。",
        },
    )
    assert msg == "已转为微实事提案「翠园路段修复路灯」"
    waiting = (await (await client.get("/staff/projects")).text()).split('id="cases-to-propose"')[1]
    assert case.case_no not in waiting.split("</ul>")[0]
    return int(round_id), case


@pytest.fixture
async def people(sessions):
    lead = await add_staff(sessions, "hj-lead", "town_supervisor")
    worker = await add_staff(sessions, "hj-cw", "community_worker")
    other_cw = await add_staff(sessions, "hj-cw2", "community_worker", community="涌口社区")
    await _bind(sessions, worker.id, "o-cw-xinwei")
    await _bind(sessions, other_cw.id, "o-cw-yongkou")
    await add_staff(sessions, "hm-staff", "town_staff", town="虎门镇")
    return lead


async def test_project_from_proposal_to_public_result(client, sessions, clock, people, tmp_path):
    round_id, case = await _setup_round(client, sessions)
    async with sessions() as db:
        p1 = (await db.exec(select(Project).where(Project.case_id == case.id))).one()
        resident_openid = (await db.get(Resident, case.resident_id)).openid
    url1 = f"/staff/projects/{p1.id}"
    # a second proposal, from a community consultation
    msg = await post(
        client,
        "/staff/projects",
        "/staff/projects",
        {
            "op": "propose",
            "round_id": str(round_id),
            "source": "consultation",
            "title": "新围公园增设长椅",
            "community": "新围社区",
            "category": "文体设施",
            "summary": "议事会提出公园内增设6张长椅。",
        },
    )
    assert msg == "已收集提案「新围公园增设长椅」"
    async with sessions() as db:
        p2 = (await db.exec(select(Project).where(Project.title == "新围公园增设长椅"))).one()

    # site visits with photos; a file that only claims to be a photo is refused and nothing is stored
    msg = await post(
        client,
        url1,
        url1,
        {"op": "visit", "notes": "三盏灯不亮"},
        [("fake.png", b"<?php echo 1; ?>", "image/png")],
    )
    assert "不是有效的图片文件" in msg
    assert not (tmp_path / "media").exists() or not [
        p for p in (tmp_path / "media").rglob("*") if p.is_file()
    ]
    msg = await post(
        client,
        url1,
        url1,
        {"op": "visit", "notes": "三盏灯不亮，灯杆完好"},
        [("site.png", png(), "image/png")],
    )
    assert msg == "已记录现场踏勘"
    page = await (await client.get(url1)).text()
    photo = re.search(r'src="/project-photos/([0-9a-f]{40}\.jpg)"', page).group(1)
    got = await client.get(f"/project-photos/{photo}")
    assert got.status == 200 and got.headers["Content-Type"] == "image/jpeg"
    assert (await client.get("/project-photos/..%2Fdb.sqlite3")).status == 404
    msg = await post(
        client,
        f"/staff/projects/{p2.id}",
        f"/staff/projects/{p2.id}",
        {"op": "visit", "notes": "空地可放长椅"},
    )
    assert msg == "已记录现场踏勘"

    # another town's staff cannot see it
    assert (await sign_in(client, "hm-staff")).status == 302
    assert (await client.get(url1)).status == 404
    assert (await sign_in(client, "hj-lead")).status == 302

    # the 联席会议: both considered, one selected, one rejected with a reason, minutes recorded
    rurl = f"/staff/projects/rounds/{round_id}"
    msg = await post(
        client,
        rurl,
        rurl,
        {
            "op": "meeting",
            "attendees": "公共服务办、住建局、城管分局、财政分局",
            "minutes": "会议研究了2个提案。",
            f"d{p1.id}": "selected",
            f"d{p2.id}": "rejected",
            f"n{p2.id}": "公园改造已列入年度计划",
        },
    )
    assert msg == "已记录联席会议：上会2个，入选1个"
    page = await (await client.get(rurl)).text()
    assert "会议研究了2个提案。" in page and "公共服务办、住建局" in page

    # approval: city 20,000 + 慈善会 3,000 + a sponsor 1,000 who agreed to be named
    msg = await post(
        client,
        url1,
        url1,
        {
            "op": "approve",
            "amount_city": "20000",
            "amount_charity": "3000",
            "amount_sponsor": "1000",
            "sponsor": "东莞某照明有限公司",
            "sponsor_public": "1",
            "unit": "厚街镇市政所",
            "due": "2026-06-30",
        },
    )
    assert msg.startswith("已批准立项，预算 24,000.00 元")
    async with sessions() as db:
        charity = (
            await db.exec(
                select(FundAccount).where(FundAccount.town == TOWN, FundAccount.source == "charity")
            )
        ).one()
        lines = (await db.exec(select(ProjectFunding).where(ProjectFunding.project_id == p1.id))).all()
        entries = {e.id: e for e in (await db.exec(select(FundEntry))).all()}
    assert charity.balance_fen == 200_000  # 5,000 - 3,000
    ledger_lines = [
        (f.source, f.amount_fen, entries[f.fund_entry_id].amount_fen) for f in lines if f.fund_entry_id
    ]
    assert ledger_lines == [("charity", 300_000, 300_000)]

    # 公示: the public page, an objection from the public, work refused until the window closes and it is answered
    public = await (await client.get(f"/public/projects/{p1.id}")).text()
    assert "24,000.00" in public and "厚街镇市政所" in public and "公示中" in public
    assert "东莞某照明有限公司" in public and "慈善会资金" in public
    token = await csrf(client, f"/public/projects/{p1.id}")
    resp = await client.post(
        f"/public/projects/{p1.id}/objection", data={"text": "灯装在我家窗口会刺眼", "csrf_token": token}
    )
    assert "您的意见已收到" in await resp.text()
    msg = await post(client, url1, url1, {"op": "stage", "name": "开工", "note": "进场施工"})
    assert msg == "公示期未结束，还不能开工"
    clock.now = NOW + timedelta(days=7)  # three working days later, the window has closed
    assert 'id="objection-form"' not in await (await client.get(f"/public/projects/{p1.id}")).text()
    resp = await client.post(
        f"/public/projects/{p1.id}/objection", data={"text": "晚了", "csrf_token": token}
    )
    assert "不在公示期内" in await resp.text()
    msg = await post(client, url1, url1, {"op": "stage", "name": "开工", "note": "进场施工"})
    assert msg == "还有公示异议未答复，答复后才能开工"
    async with sessions() as db:
        objection = (await db.exec(select(ProjectObjection))).one()
    assert objection.channel == "public"
    msg = await post(
        client,
        url1,
        url1,
        {"op": "answer", "objection_id": str(objection.id), "answer": "将加装遮光罩，朝向路面"},
    )
    assert msg == "已答复异议"

    # stages with photos and money spent, then acceptance
    msg = await post(
        client,
        url1,
        url1,
        {"op": "stage", "name": "开工", "note": "进场施工", "spent": "10000"},
        [("s.png", png("blue"), "image/png")],
    )
    assert msg == "已登记进度：开工"
    msg = await post(client, url1, url1, {"op": "accept", "note": "验收合格"})
    assert msg == "请先登记“完工”进度再验收"
    msg = await post(
        client, url1, url1, {"op": "stage", "name": "完工", "note": "三盏LED路灯已亮", "spent": "12500.50"}
    )
    assert msg == "已登记进度：完工"
    clock.now = NOW + timedelta(days=20)
    msg = await post(
        client,
        url1,
        url1,
        {"op": "accept", "note": "验收合格，照明正常"},
        [("a.png", png("green"), "image/png")],
    )
    assert msg == "已验收，结果已公示"

    # the public result: the page's numbers equal the rows (budget = funding lines, 慈善会 = its ledger line)
    public = await (await client.get(f"/public/projects/{p1.id}")).text()
    async with sessions() as db:
        stages_spent = sum(s.spent_fen for s in (await db.exec(select(ProjectStage))).all())
        charity_entry = (await db.exec(select(FundEntry).where(FundEntry.kind == "spending"))).one()
    assert stages_spent == 2_250_050
    shown_spent = re.search(r'id="public-spent">([^<]+)<', public).group(1)
    shown_budget = re.search(r'id="public-budget">([^<]+)<', public).group(1)
    assert shown_spent == "22,500.50" and shown_budget == "24,000.00"
    charity_row = re.search(r"<td>慈善会资金</td><td class=\"num\">([^<]+)<", public).group(1)
    assert charity_row == f"{charity_entry.amount_fen // 100:,}.{charity_entry.amount_fen % 100:02d}"
    assert "2026-03-22 通过验收（按期完成）" in public
    assert "将加装遮光罩，朝向路面" in public  # the answer is public; the objection's own words are not
    assert "刺眼" not in public
    for private in ("13812345678", "138", case.case_no, "晚上很黑", resident_openid):
        assert private not in public
    assert (
        len(re.findall(r'src="/project-photos/[0-9a-f]{40}\.jpg"', public)) == 2
    )  # the stage and acceptance

    # totals per town and round
    listing = await (await client.get(f"/public/projects?town={TOWN}")).text()
    row = re.search(rf'<tr data-town="{TOWN}">(.*?)</tr>', listing, re.S).group(1)
    assert re.findall(r'class="num">([^<]+)<', row) == ["2", "1", "24,000.00", "22,500.50", "1/1"]
    staff_page = await (await client.get("/staff/projects")).text()
    assert re.findall(r"<td>([^<]+)</td>", staff_page.split('id="totals-town"')[1].split("</tr>")[0]) == [
        "2",
        "1",
        "24,000.00",
        "22,500.50",
        "1",
        "1",
    ]

    # the resident and the community were told at each stage; the other community was not
    told = await resident_texts(sessions, resident_openid)
    for words in (
        "已作为微实事提案收集",
        "完成现场踏勘",
        "联席会议研究：入选",
        "已批准立项：预算24,000.00元",
        "进度：开工",
        "进度：完工",
        "已通过验收",
    ):
        assert any(words in t for t in told), (words, told)
    community = await resident_texts(sessions, "o-cw-xinwei")
    assert sum("【微实事】" in t for t in community) >= 7
    assert await resident_texts(sessions, "o-cw-yongkou") == []
    async with sessions() as db:
        events = (await db.exec(select(CaseEvent).where(CaseEvent.case_id == case.id))).all()
    assert any("微实事项目：已验收" in e.note for e in events)


async def test_a_resident_votes_once_per_round(client, sessions, people, clock):
    round_id, case = await _setup_round(client, sessions, objection_days="5")
    voter = await add_resident(sessions, openid="o-voter")
    await add_case(sessions, kind="micro_project")  # another resident of the town
    async with transaction(sessions) as db:
        row = await db.get(Case, case.id)
        row.resident_id = voter.id  # the voter raised a case in this town
    msg = await post(
        client,
        "/staff/projects",
        "/staff/projects",
        {
            "op": "propose",
            "round_id": str(round_id),
            "source": "staff",
            "title": "学校门口增设减速带",
            "community": "新围社区",
            "category": "道路交通",
            "summary": "上下学时段车速快。",
        },
    )
    assert "已收集提案" in msg
    async with sessions() as db:
        projects = (await db.exec(select(Project).order_by(col(Project.id)))).all()
    rurl = f"/staff/projects/rounds/{round_id}"
    msg = await post(client, rurl, rurl, {"op": "vote", "closes": "2026-03-09"})
    assert msg == "至少要有两个已踏勘的提案才能投票"
    for p in projects:
        await post(
            client, f"/staff/projects/{p.id}", f"/staff/projects/{p.id}", {"op": "visit", "notes": "已看现场"}
        )
    msg = await post(client, rurl, rurl, {"op": "vote", "closes": "2026-03-09"})
    assert msg == "已发起投票，2位居民收到投票链接"
    async with sessions() as db:
        invite = (
            await db.exec(
                select(Outbox).where(Outbox.openid == "o-voter", col(Outbox.link).like("sign:vote:%"))
            )
        ).one()
    assert invite.link == f"sign:vote:{round_id}-{voter.id}"
    token = sign_link(
        client.app[keys.SETTINGS].link_secret, "vote", f"{round_id}-{voter.id}", now=clock().timestamp()
    )
    page = await (await client.get(f"/vote/{token}")).text()
    assert "学校门口增设减速带" in page and 'id="vote-form"' in page
    vtoken = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = await client.post(f"/vote/{token}", data={"project_id": str(projects[1].id), "csrf_token": vtoken})
    page = await resp.text()
    assert "投票成功：您投给了「学校门口增设减速带」" in page
    assert re.search(rf'data-project="{projects[1].id}">1<', page)
    # a second vote in the same round, for any project, is refused and counts nothing
    resp = await client.post(f"/vote/{token}", data={"project_id": str(projects[0].id), "csrf_token": vtoken})
    page = await resp.text()
    assert "您在本轮已经投过票了" in page
    async with sessions() as db:
        votes = (await db.exec(select(ProjectVote))).all()
    assert [(v.project_id, v.resident_id) for v in votes] == [(projects[1].id, voter.id)]
    staff_round = await (await client.get(rurl)).text()
    assert re.findall(r'<td class="votes">(\d+)</td>', staff_round) == ["0", "1"]
    # a forged or foreign token opens nothing
    assert (await client.get(f"/vote/{token[:-2]}xx")).status == 403
    assert (
        await client.get(
            f"/vote/{sign_link('wrong' * 8, 'vote', f'{round_id}-{voter.id}', now=clock().timestamp())}"
        )
    ).status == 403


async def test_two_votes_at_once_from_one_resident_count_once(db_url):
    """The unique constraint, not a check in Python, keeps one vote per resident and round: two casts at the same
    moment through two engines (two web workers) give one vote and one refusal."""
    import asyncio

    from bot.cases.actors import Actor
    from bot.db import make_engine, make_sessions
    from bot.projects import service as svc
    from bot.projects.votes import AlreadyVoted, cast_vote, open_vote

    engines = [make_engine(db_url), make_engine(db_url)]
    try:
        first, second = (make_sessions(e) for e in engines)
        lead = await add_staff(first, "hj-lead", "town_supervisor")
        case = await add_case(first, kind="micro_project")
        async with transaction(first) as db:
            actor = Actor.of_staff(lead)
            r = await svc.create_round(db, town=TOWN, name="第一批", objection_days=5, actor=actor, now=NOW)
            ids = []
            for title in ("路灯", "长椅"):
                p = await svc.propose(
                    db,
                    round_=r,
                    title=title,
                    summary=title,
                    community="新围社区",
                    category="其他",
                    source="staff",
                    actor=actor,
                    now=NOW,
                )
                await svc.visit(db, project=p, notes="看过", photos=[], actor=actor, now=NOW)
                ids.append(p.id)
            await open_vote(db, round_=r, closes_at=NOW + timedelta(days=3), actor=actor, now=NOW)
            round_id = r.id

        async def one(sessions, project_id: int) -> str:
            try:
                async with transaction(sessions) as db:
                    round_ = await db.get(ProjectRound, round_id)
                    await cast_vote(
                        db, round_=round_, project_id=project_id, resident_id=case.resident_id, now=NOW
                    )
                    await asyncio.sleep(0.3)  # both inside their transactions at once
                return "voted"
            except AlreadyVoted:
                return "refused"

        outcomes = await asyncio.gather(one(first, ids[0]), one(second, ids[1]))
        assert sorted(outcomes) == ["refused", "voted"]
        async with first() as db:
            assert len((await db.exec(select(ProjectVote))).all()) == 1
    finally:
        for e in engines:
            await e.dispose()


async def test_a_project_past_its_due_date_is_reported_once(client, sessions, people):
    """The minute sweep reports an approved project not accepted by the end of its due date (China's day) once,
    to the town's supervisor and staff and the community's workers; an accepted one is never reported."""
    from bot.cases.actors import Actor
    from bot.cases.project_overdue import report_overdue
    from bot.projects import service as svc

    await _bind(sessions, people.id, "o-hj-lead")
    async with transaction(sessions) as db:
        actor = Actor.of_staff(await db.get(Staff, people.id))
        r = await svc.create_round(db, town=TOWN, name="第一批", objection_days=1, actor=actor, now=NOW)
        made = []
        for title in ("修路灯", "装长椅"):
            p = await svc.propose(
                db,
                round_=r,
                title=title,
                summary=title,
                community="新围社区",
                category="其他",
                source="staff",
                actor=actor,
                now=NOW,
            )
            await svc.visit(db, project=p, notes="看过", photos=[], actor=actor, now=NOW)
            made.append(p)
        await svc.hold_meeting(
            db,
            round_=r,
            attendees="各部门",
            minutes="纪要",
            actor=actor,
            now=NOW,
            decisions={p.id: ("selected", "") for p in made},
        )
        for p in made:
            await svc.approve(
                db,
                project=p,
                funding=[svc.FundingLine("city", 100_000)],
                unit="市政所",
                due=date(2026, 3, 10),
                actor=actor,
                now=NOW,
            )
        later = NOW + timedelta(days=5)
        await svc.add_stage(
            db, project=made[1], name="完工", note="装好", photos=[], spent_fen=0, actor=actor, now=later
        )
        await svc.accept(db, project=made[1], note="合格", photos=[], actor=actor, now=later)
    # 10 March 23:30 in Dongguan is still the due date; 11 March 00:30 is past it
    on_the_day = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
    for when, expected in (
        (on_the_day, 0),
        (on_the_day + timedelta(hours=1), 1),
        (on_the_day + timedelta(days=3), 0),
    ):
        async with transaction(sessions) as db:
            assert await report_overdue(db, now=when) == expected, when
    told = {o.openid: o.text for o in (await _all_outbox(sessions)) if o.kind == "escalation"}
    assert set(told) == {"o-hj-lead", "o-cw-xinwei"}  # not the other community's worker
    assert "「修路灯」" in told["o-hj-lead"] and "2026-03-10" in told["o-hj-lead"]
    assert (await sign_in(client, "hj-lead")).status == 302
    page = await (await client.get(f"/staff/projects/{made[0].id}")).text()
    assert 'id="project-overdue"' in page
    assert 'id="project-overdue"' not in await (await client.get(f"/staff/projects/{made[1].id}")).text()


async def _all_outbox(sessions) -> list[Outbox]:
    async with sessions() as db:
        return list((await db.exec(select(Outbox).order_by(col(Outbox.id)))).all())
