"""Residents' rights over their data (PIPL), through the real app: the simulator talks to the webhook over HTTP,
a real database (SQLite and PostgreSQL). "我的信息" shows what is held, phone masked; "删除我的信息" asks first,
then cancels open cases (the staff handling them told) and erases the personal data: afterwards no text column of
any table holds the phone, the name or the words, the statistics are what they were, the hash chain still holds."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot import keys
from bot.cases.actors import Actor
from bot.cases.chain import verify_chains
from bot.cases.rights import retention_sweep
from bot.cases.timeline import record_event
from bot.db import transaction
from bot.models import AuditLog, Case, Outbox, Resident, Staff, Survey
from bot.ops.scheduler import retention_job
from tests.factories import add_staff
from tests.helpers import System, running_system

CASE_NO = re.compile(r"MS\d{8}-\d{4}")
PHONE = "13912345678"
NAME = "陈阿妹"
WORDS = ["幸福路18号", "中风三年", NAME]
OTHER_WORDS = "住虎门镇北栅社区"
FIRST = f"我叫{NAME}，我爸中风三年了想要一辆轮椅，住厚街镇新围社区幸福路18号"


@pytest.fixture
async def system(db_url: str, tmp_path: Path) -> AsyncIterator[System]:
    async with running_system(db_url, tmp_path) as s:
        yield s


async def _file_case(user: Any, first: str = FIRST, phone: str = PHONE) -> str:
    """File a wish in chat the way a resident does; returns its number."""
    r = await user.send_text(first)
    for answer in ("同意", phone, "确认", "确认"):
        m = CASE_NO.search(r.text)
        if m:
            return m.group(0)
        r = await user.send_text(answer)
    m = CASE_NO.search(r.text)
    assert m, r.text
    return m.group(0)


async def _every_text_cell(system: System) -> list[tuple[str, str, str]]:
    """(table, column, value) of every non-empty text and JSON cell of every table in the database."""
    engine = system.app[keys.ENGINE]
    async with engine.connect() as conn:
        tables = await conn.run_sync(
            lambda c: {t: sa.inspect(c).get_columns(t) for t in sa.inspect(c).get_table_names()}
        )
        found = []
        for table, columns in tables.items():
            for column in columns:
                if (
                    not isinstance(column["type"], (sa.String, sa.Text, sa.JSON))
                    and "JSON" not in str(column["type"]).upper()
                ):
                    continue
                name = column["name"]
                q = sa.text(f'SELECT CAST("{name}" AS TEXT) FROM "{table}" WHERE "{name}" IS NOT NULL')
                for (value,) in (await conn.execute(q)).all():
                    found.append((table, name, value))
    return found


async def _figures(system: System) -> dict[str, Any]:
    """The statistics, counted here from the rows (not by the reporting code)."""
    async with system.app[keys.SESSIONS]() as s:
        cases = (await s.exec(select(Case))).all()
        scores = sorted(v for v in (await s.exec(select(Survey.score))).all() if v is not None)
    return {
        "by": sorted((c.kind, c.category, c.town, c.community, c.channel, c.status) for c in cases),
        "created": sorted(c.created_at for c in cases),
        "completed": sorted(c.completed_at for c in cases if c.completed_at),
        "scores": scores,
    }


async def test_my_data_then_deletion_leaves_no_trace_and_the_same_figures(system: System) -> None:
    user = system.user()
    case_no = await _file_case(user)
    await _file_case(system.user(), f"我想要一张护理床，{OTHER_WORDS}", "13700001111")
    async with transaction(system.app[keys.SESSIONS]) as s:
        case = (await s.exec(select(Case).where(Case.case_no == case_no))).one()
        case.status, case.completed_at, case.closed_at = "closed", datetime.now(UTC), datetime.now(UTC)
        # staff write what they did on the timeline, with the name and number they called
        record_event(
            s,
            case=case,
            kind="note",
            actor=Actor("staff", 1, "工作员"),
            at=datetime.now(UTC),
            note=f"已致电{NAME} {PHONE}，轮椅已送到幸福路18号",
            data={"phone": PHONE},
        )
        s.add(
            Survey(
                case_id=case.id,
                resident_id=case.resident_id,
                status="answered",
                score=4,
                comment=f"{NAME}很满意",
            )
        )

    r = await user.send_text("我的信息")
    assert case_no in r.text and "139****5678" in r.text and PHONE not in r.text, r.text
    assert "授权" in r.text and "已同意" in r.text, r.text

    before = await _figures(system)
    cells = await _every_text_cell(system)
    for w in (PHONE, *WORDS):  # the data is there to be erased (else the test below proves nothing)
        assert any(w in v for _, _, v in cells), w

    r = await user.send_text("删除我的信息")
    assert "确认删除" in r.text, r.text
    r = await user.send_text("算了")
    assert "没有删除" in r.text, r.text
    assert any(PHONE in v for _, _, v in await _every_text_cell(system))

    await user.send_text("删除我的信息")
    r = await user.send_text("确认删除")
    assert "已删除" in r.text, r.text

    traces = [
        (t, c, v[:80]) for t, c, v in await _every_text_cell(system) if any(w in v for w in (PHONE, *WORDS))
    ]
    assert traces == []
    assert await _figures(system) == before
    async with system.app[keys.SESSIONS]() as s:
        kept = (await s.exec(select(Case).where(Case.case_no != case_no))).one()
        report = await verify_chains(s)
        audits = (await s.exec(select(AuditLog).where(AuditLog.action == "erase_resident"))).all()
    assert OTHER_WORDS in kept.description  # only this resident's data is gone
    assert report.broken == [] and report.events > 0
    assert len(audits) == 1 and PHONE not in audits[0].detail


async def test_deletion_cancels_an_open_case_and_tells_its_staff(system: System) -> None:
    user = system.user()
    case_no = await _file_case(user)
    sessions = system.app[keys.SESSIONS]
    await add_staff(sessions, "worker1", "town_staff", town="厚街镇")
    async with transaction(sessions) as s:
        staff = (await s.exec(select(Staff).where(Staff.username == "worker1"))).one()
        staff.openid = "o-staff-worker1"
        case = (await s.exec(select(Case).where(Case.case_no == case_no))).one()
        case.status, case.claimed_by_id = "claimed", staff.id

    await user.send_text("删除我的信息")
    r = await user.send_text("确认删除")
    assert case_no in r.text and "撤销" in r.text and "已删除" in r.text, r.text
    async with sessions() as s:
        case = (await s.exec(select(Case).where(Case.case_no == case_no))).one()
        told = (await s.exec(select(Outbox).where(Outbox.openid == "o-staff-worker1"))).all()
        to_resident = (await s.exec(select(Outbox).where(Outbox.openid == user.openid))).all()
        resident = await s.get(Resident, case.resident_id)
        report = await verify_chains(s)
    assert case.status == "cancelled"
    assert [t.text for t in told if case_no in t.text and "停止办理" in t.text], [t.text for t in told]
    assert to_resident == []  # nothing left queued under the resident's WeChat id
    assert resident is not None and resident.phone is None and resident.openid != user.openid
    assert report.broken == []
    assert not [v for _, _, v in await _every_text_cell(system) if PHONE in v or NAME in v]


async def test_the_retention_sweep_anonymises_only_cases_closed_longer_ago(system: System) -> None:
    sessions = system.app[keys.SESSIONS]
    numbers = [await _file_case(system.user()) for _ in range(2)]
    now = datetime(2030, 6, 1, 4, 0, tzinfo=UTC)
    async with transaction(sessions) as s:
        for case_no, closed in zip(
            numbers, (now - timedelta(days=3 * 365 + 2), now - timedelta(days=3 * 365 - 2)), strict=True
        ):
            case = (await s.exec(select(Case).where(Case.case_no == case_no))).one()
            case.status, case.completed_at, case.closed_at = "closed", closed, closed
    before = await _figures(system)
    # the nightly job of the scheduler, on an injected clock
    assert await retention_job(sessions=sessions, clock=lambda: now, years=3) == 1
    async with transaction(sessions) as s:
        assert await retention_sweep(s, now=now, years=3) == 0  # idempotent
        old, young = [(await s.exec(select(Case).where(Case.case_no == n))).one() for n in numbers]
        report = await verify_chains(s)
    assert PHONE not in (old.contact_phone or "") and NAME not in old.description and old.address is None
    assert NAME in young.description
    assert report.broken == []
    assert await _figures(system) == before


async def test_staff_erase_on_a_written_request_audited(system: System, db_url: str) -> None:
    case_no = await _file_case(system.user())
    sessions = system.app[keys.SESSIONS]
    await add_staff(sessions, "clerk", "town_staff", town="厚街镇")

    async def erase(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "archive",
            "erase",
            *args,
            env={**os.environ, "DATABASE_URL": db_url, "ENVIRONMENT": "development"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode()

    code, out = await erase("--case", "MS20000101-0001", "--by", "clerk", "--ground", "书面申请 2026-07")
    assert code == 1, out
    code, out = await erase("--case", case_no, "--by", "clerk", "--ground", "书面申请 2026-07")
    assert code == 0 and "撤销 1 件" in out, out
    async with sessions() as s:
        case = (await s.exec(select(Case).where(Case.case_no == case_no))).one()
        staff = (await s.exec(select(Staff).where(Staff.username == "clerk"))).one()
        audit = (await s.exec(select(AuditLog).where(AuditLog.action == "erase_resident"))).one()
    assert case.status == "cancelled" and NAME not in case.description
    assert audit.staff_id == staff.id and "书面申请 2026-07" in audit.detail
    assert not [v for _, _, v in await _every_text_cell(system) if PHONE in v or NAME in v]
