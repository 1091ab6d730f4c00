"""`python -m bot pool import|export`: broken files leave the database untouched, re-import updates, export
round-trips, and a 10,000-row file imports in one go."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func
from sqlmodel import select

from bot.db import make_engine, make_sessions, migrate
from bot.models import Resource
from bot.ops.pool_cli import main
from matching.generator import generate_pool
from matching.pool_io import export_csv

HEADER = "编号,类型,名称,电话,服务类别,所在镇街\n"


async def _rows(url: str) -> dict[str, Resource]:
    engine = make_engine(url)
    try:
        async with make_sessions(engine)() as db:
            return {r.key: r for r in (await db.exec(select(Resource))).all()}
    finally:
        await engine.dispose()


@pytest.fixture
def url(sqlite_url):
    asyncio.run(migrate(sqlite_url))
    return sqlite_url


def run(url: str, *args: str) -> int:
    return main(["--database-url", url, *args])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("名称,电话\n张三,13800138000\n", "缺少必填列"),
        (
            HEADER + "A1,热心市民,张三,13800138000,助老,厚街\nA2,热心市民,李四,999,助老,厚街\n",
            "第3行「电话」",
        ),
        (
            HEADER + "A1,热心市民,张三,13800138000,助老,厚街\nA2,热心市民,李四,13800138001,助老,东京\n",
            "未知镇街",
        ),
        (HEADER + "A1,热心市民,张三,13800138000,助老,厚街\nA1,热心市民,李四,13800138001,助老,厚街\n", "重复"),
        (HEADER + "A1,外星人,张三,13800138000,助老,厚街\n", "未知类型"),
    ],
    ids=["columns", "phone", "town", "duplicate", "kind"],
)
def test_broken_file_reports_and_writes_nothing(url, tmp_path, capsys, content, problem):
    f = tmp_path / "pool.csv"
    f.write_text(content, encoding="utf-8")
    assert run(url, "import", str(f)) == 1
    err = capsys.readouterr().err
    assert problem in err and "整个文件未导入" in err
    assert asyncio.run(_rows(url)) == {}


def test_import_reimport_and_export(url, tmp_path, capsys):
    f = tmp_path / "pool.csv"
    f.write_text(
        HEADER + "A1,热心市民,张三,13800138000,助老,厚街\nA2,爱心企业,莞香米业,13800138001,生活物资,虎门\n",
        encoding="gb18030",
    )  # as Chinese Excel saves it
    assert run(url, "import", "--dry-run", str(f)) == 0
    assert asyncio.run(_rows(url)) == {}
    assert run(url, "import", str(f)) == 0
    assert "新增2条" in capsys.readouterr().out
    f.write_text(HEADER + "A1,热心市民,张三丰,13800138000,助老、助残,厚街\n", encoding="utf-8")
    assert run(url, "import", str(f)) == 0
    rows = asyncio.run(_rows(url))
    assert len(rows) == 2 and rows["A1"].name == "张三丰" and rows["A1"].categories == ["助残", "助老"]
    out = tmp_path / "out.xlsx"
    assert run(url, "export", str(out)) == 0
    assert run(url, "import", str(out)) == 0 and "更新2条" in capsys.readouterr().out
    assert len(asyncio.run(_rows(url))) == 2


@pytest.mark.slow  # 10,000 rows: run by make test, left out of make test-fast
def test_ten_thousand_rows_import_at_once(url, tmp_path):
    f = tmp_path / "big.csv"
    f.write_bytes(export_csv(generate_pool(n=10_000)).encode("utf-8-sig"))
    assert run(url, "import", str(f)) == 0

    async def count() -> int:
        engine = make_engine(url)
        try:
            async with make_sessions(engine)() as db:
                return (await db.exec(select(func.count()).select_from(Resource))).one()
        finally:
            await engine.dispose()

    assert asyncio.run(count()) == 10_000


def test_missing_file(url, tmp_path):
    assert run(url, "import", str(tmp_path / "nope.csv")) == 2
