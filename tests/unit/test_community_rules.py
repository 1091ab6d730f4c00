"""The community name rules and the CSV parser (reference/communities.py), against hand-written expectations;
the shipped seed list parses without a refused row."""

from __future__ import annotations

import pytest

from bot.cases.communities import community_id_of_scene
from reference.communities import check_row, match, parse_csv, seed_rows, stem


def test_the_seed_list_parses_and_stays_modest() -> None:
    rows = seed_rows()
    towns = {r.town for r in rows}
    assert len(rows) == 109 and len(towns) == 9  # reference/data/README.md says so
    assert len({(r.town, r.name) for r in rows}) == len(rows)
    assert all(r.name.endswith(r.kind) for r in rows)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("新围社区", "新围"),
        ("新围", "新围"),
        (" 新围村委会 ", "新围"),
        ("河田居委会", "河田"),
        ("社区", "社区"),
        ("ＡＢ村", "AB"),
    ],
)
def test_stem(text: str, expected: str) -> None:
    assert stem(text) == expected


REGISTRY = {"厚街镇": [(1, "新围社区"), (2, "河田社区"), (3, "桥头社区")], "桥头镇": [(9, "桥头社区")]}


@pytest.mark.parametrize(
    ("town", "text", "expected"),
    [
        ("厚街镇", "新围社区", 1),
        ("厚街", "新围", 1),  # short town name, bare stem
        ("厚街镇", "河田村委会", 2),
        ("桥头镇", "桥头社区", 9),  # the same name in another town is another community
        ("虎门镇", "新围社区", None),  # a town without that community
        ("厚街镇", "幸福里小区", None),
        ("厚街镇", "", None),
        ("不存在镇", "新围社区", None),
    ],
)
def test_match(town: str, text: str, expected: int | None) -> None:
    assert match(town, text, REGISTRY) == expected


def test_match_refuses_an_ambiguous_stem() -> None:
    registry = {"常平镇": [(1, "桥梓村"), (2, "桥梓社区")]}
    assert match("常平镇", "桥梓", registry) is None
    assert match("常平镇", "桥梓村", registry) == 1


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (("厚街镇", "新围社区", "社区"), None),
        (("厚街", "新围社区", "社区"), None),
        (("东莞镇", "新围社区", "社区"), "33个镇街"),
        (("厚街镇", "新围社区", "村"), "应以“村”结尾"),
        (("厚街镇", "新围社区", "居委"), "类型只能是"),
        (("厚街镇", "社区", "社区"), "没有村（社区）名"),
        (("厚街镇", "<script>社区", "社区"), "只能包含"),
        (("厚街镇", "新" * 40 + "社区", "社区"), "超过32个字"),
    ],
)
def test_check_row(row: tuple[str, str, str], problem: str | None) -> None:
    checked, reason = check_row(*row)
    if problem is None:
        assert checked is not None and reason is None and checked.town == "厚街镇"
    else:
        assert checked is None and reason is not None and problem in reason


@pytest.mark.parametrize(
    ("data", "fatal"),
    [
        (b"", "文件为空"),
        ("名称,镇街\n新围社区,厚街镇\n".encode(), "表头"),
        (b"town,name,kind,extra\n", "表头"),
        ("town,name,kind\n厚街镇,新围社区,社区\n".encode("gbk"), "UTF-8"),
        (b"town,name,kind\n\x00\x00", "二进制"),
        (b"x" * (600 * 1024), "KB"),
    ],
)
def test_unusable_files(data: bytes, fatal: str) -> None:
    parsed = parse_csv(data)
    assert parsed.fatal is not None and fatal in parsed.fatal and not parsed.rows


def test_a_bom_and_chinese_headers_in_another_order() -> None:
    parsed = parse_csv("\ufeff类型,镇街,名称\r\n村,谢岗,南面村\r\n\r\n".encode())
    assert parsed.fatal is None and not parsed.rejected
    assert [(r.town, r.name, r.kind, r.line) for r in parsed.rows] == [("谢岗镇", "南面村", "村", 2)]


@pytest.mark.parametrize(
    ("scene", "expected"),
    [
        ("c:17", 17),
        ("c:0017", 17),
        ("c:", None),
        ("c:1a", None),
        ("c:１７", None),
        ("x:17", None),
        (None, None),
        ("c:" + "9" * 12, None),
    ],
)
def test_scene(scene: str | None, expected: int | None) -> None:
    assert community_id_of_scene(scene) == expected
