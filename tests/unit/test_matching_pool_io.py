"""Import and export of the resource pool: round trips, broken files and a 10,000-row file."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import Workbook

from matching.generator import generate_pool
from matching.pool_io import COLUMNS, export_csv, export_xlsx, parse_pool

HEADER = [
    "编号",
    "类型",
    "名称",
    "联系人",
    "电话",
    "服务类别",
    "物品服务",
    "所在镇街",
    "服务镇街",
    "同时承接上限",
]
GOOD = [
    "R1",
    "爱心企业",
    "东莞市华盛电子有限公司",
    "张伟",
    "13812345678",
    "生活物资、助学",
    "米面油",
    "虎门",
    "虎门、厚街",
    "5",
]


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8-sig") -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def with_cell(column: str, value: str, key: str = "R1") -> list[str]:
    row = list(GOOD)
    row[HEADER.index(column)] = value
    row[0] = key
    return row


# --- round trips -----------------------------------------------------------------------------------------------


def test_csv_round_trip_keeps_every_field() -> None:
    pool = generate_pool(n=300, seed=11)
    result = parse_pool(export_csv(pool).encode("utf-8-sig"), filename="资源库.csv")
    assert result.ok, result.report()
    assert result.rows == pool
    assert result.columns == {name for name, _ in COLUMNS}


def test_xlsx_round_trip_keeps_every_field() -> None:
    pool = generate_pool(n=300, seed=12)
    result = parse_pool(export_xlsx(pool), filename="资源库.xlsx")
    assert result.ok, result.report()
    assert result.rows == pool


def test_a_formula_looking_name_is_escaped_on_export_and_restored_on_import() -> None:
    import dataclasses

    tricky = dataclasses.replace(generate_pool(n=1)[0], name='=HYPERLINK("x")')
    text = export_csv([tricky])
    assert "'=HYPERLINK" in text
    assert parse_pool(text.encode(), filename="a.csv").rows == [tricky]


# --- good files in the forms staff really produce -------------------------------------------------------------


def test_gbk_csv_with_short_town_names_and_english_headers() -> None:
    rows = [
        ["key", "kind", "name", "phone", "categories", "home_town", "towns_served", "available"],
        ["V9", "热心市民", "陈小明", "138 1234 5678", "助老", "樟木头", "全市", "否"],
    ]
    result = parse_pool(csv_bytes(rows, "gbk"), filename="pool.CSV")
    assert result.ok, result.report()
    (r,) = result.rows
    assert (r.phone, r.home_town, r.city_wide, r.available, r.contact) == (
        "13812345678",
        "樟木头镇",
        True,
        False,
        "陈小明",
    )
    assert result.columns == {
        "key",
        "kind",
        "name",
        "phone",
        "categories",
        "home_town",
        "towns_served",
        "available",
    }


def test_xlsx_numeric_phone_cells_and_landlines() -> None:
    rows: list[list[object]] = [HEADER, with_cell("电话", "0769-22123456", "A")]
    numeric = with_cell("电话", "", "B")
    numeric[HEADER.index("电话")] = 13912345678  # Excel stores it as a number
    rows.append(numeric)
    result = parse_pool(xlsx_bytes(rows), filename="a.xlsx")
    assert result.ok, result.report()
    assert [r.phone for r in result.rows] == ["0769-22123456", "13912345678"]
    assert result.rows[0].towns_served == {"虎门镇", "厚街镇"}


# --- broken files ----------------------------------------------------------------------------------------------


def test_missing_and_unknown_columns_are_reported_on_the_header_row() -> None:
    header = [h for h in HEADER if h != "电话"] + ["备注"]
    row = [v for h, v in zip(HEADER, GOOD, strict=True) if h != "电话"] + ["老客户"]
    result = parse_pool(csv_bytes([header, row]), filename="a.csv")
    assert not result.ok and result.rows == []
    assert {(p.row, p.column, p.message) for p in result.problems} == {
        (1, "备注", "未知的列名"),
        (1, "电话", "缺少必填列"),
    }
    assert "第1行「电话」：缺少必填列" in result.report()


@pytest.mark.parametrize(
    "phone", ["1234", "2381234567", "138123456789", "12812345678", "电话号码", "138-1234-567x"]
)
def test_bad_phones(phone: str) -> None:
    result = parse_pool(csv_bytes([HEADER, with_cell("电话", phone)]), filename="a.csv")
    assert not result.ok
    assert [(p.row, p.column) for p in result.problems] == [(2, "电话")]
    assert "电话号码格式不正确" in result.problems[0].message


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("所在镇街", "火星镇", "未知镇街"),
        ("服务镇街", "虎门、月球", "未知镇街：月球"),
        ("服务类别", "助学、发红包", "未知类别：发红包"),
        ("类型", "外星人", "未知类型"),
        ("同时承接上限", "三", "应为不小于0的整数"),
        ("同时承接上限", "-1", "应为不小于0的整数"),
        ("同时承接上限", "2.5", "应为不小于0的整数"),
        ("名称", "", "不能为空"),
    ],
)
def test_bad_cells_name_row_column_and_problem(column: str, value: str, message: str) -> None:
    result = parse_pool(csv_bytes([HEADER, GOOD, with_cell(column, value, key="R2")]), filename="a.xlsx.csv")
    assert not result.ok
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert (problem.row, problem.column) == (3, column)
    assert message in problem.message


def test_duplicate_keys_point_at_the_first_occurrence() -> None:
    result = parse_pool(
        csv_bytes([HEADER, GOOD, with_cell("名称", "另一家"), with_cell("名称", "第三家", "R3")]),
        filename="a.csv",
    )
    assert not result.ok
    assert [(p.row, p.column) for p in result.problems] == [(3, "编号")]
    assert "与第2行相同" in result.problems[0].message


def test_one_bad_row_means_nothing_is_importable() -> None:
    rows = [HEADER] + [with_cell("名称", f"商户{i}", key=f"K{i}") for i in range(50)]
    rows[30] = with_cell("电话", "110", key="K29")
    result = parse_pool(csv_bytes(rows), filename="a.csv")
    assert not result.ok
    assert [p.row for p in result.problems] == [31]
    assert "整个文件未导入" in result.report()


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"", "a.csv", "文件是空的"),
        (b"not a zip", "a.xlsx", "文件无法读取"),
        (b"whatever", "a.pdf", "只支持CSV或Excel"),
        ("编号,类型,名称,电话,服务类别,所在镇街\n".encode(), "a.csv", "没有记录"),
    ],
)
def test_unreadable_files(data: bytes, filename: str, message: str) -> None:
    result = parse_pool(data, filename=filename)
    assert not result.ok
    assert message in result.problems[0].message


@pytest.mark.slow  # 10,000 rows: run by make test, left out of make test-fast
def test_a_ten_thousand_row_file_parses_and_pinpoints_a_late_error() -> None:
    pool = generate_pool(n=10_000, seed=21)
    text = export_csv(pool)
    result = parse_pool(text.encode("utf-8-sig"), filename="big.csv")
    # speed is measured in benchmarks/, not asserted here (a loaded machine is not a failure)
    assert result.ok and len(result.rows) == 10_000
    lines = text.split("\r\n")
    lines[7000] = lines[7000].replace(pool[6999].phone, "1380000")  # row 7001 of the sheet
    broken = parse_pool("\r\n".join(lines).encode(), filename="big.csv")
    assert [(p.row, p.column) for p in broken.problems] == [(7001, "电话")]


@pytest.mark.slow  # 10,000 rows: run by make test, left out of make test-fast
def test_a_ten_thousand_row_xlsx_round_trips() -> None:
    pool = generate_pool(n=10_000, seed=22)
    data = export_xlsx(pool)
    result = parse_pool(data, filename="big.xlsx")
    # speed is measured in benchmarks/, not asserted here (a loaded machine is not a failure)
    assert result.ok and result.rows == pool
