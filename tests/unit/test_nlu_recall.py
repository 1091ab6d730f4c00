"""Things the other readings miss (nlu/recall.py, through `read_items`). Invented sentences, not taken from an
evaluation set; each fails on the reading before its mechanism."""

from __future__ import annotations

import pytest

from bot.conversation.dialogue.slots import read_items
from bot.conversation.nlu import recall


@pytest.mark.parametrize(
    ("text", "model", "expected"),
    [
        ("公园老鼠好多 想搞下灭鼠", ["灭鼠"], ("老鼠",)),
        ("后巷曱甴特别多 想请人嚟消毒", [], ("曱甴",)),
        ("后巷啲白蚁特别多 想请人嚟消毒", [], ("白蚁",)),
        ("村口野狗好多 夜晚成日吠", [], ("野狗",)),
    ],
)
def test_what_teems_named_before_how_many_is_the_projects_item(
    text: str, model: list[str], expected: tuple[str, ...]
) -> None:
    assert read_items(text, model, wish=False).items == expected


def test_people_places_and_vehicles_that_are_many_are_no_item() -> None:
    assert recall.teeming_after("呢条路车好多 好危险") == []
    assert recall.teeming_after("菜市场人好多") == []
    assert recall.teeming_after("街市垃圾好多") == []  # rubbish: only when nothing else is named (the guide)
    assert read_items("篮球场啲灯坏咗 蚊又好多", ["灯"], wish=False).items == ("灯",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("阿婆冬天冷 想要棉衣棉裤各一套", ("棉衣", "棉裤")),
        ("BB出世 想要奶粉 尿片 湿纸巾", ("奶粉", "尿片", "湿纸巾")),
    ],
)
def test_things_listed_without_a_conjunction(text: str, expected: tuple[str, ...]) -> None:
    assert read_items(text, []).items == expected


@pytest.mark.parametrize(
    "text", ["我想要张轮椅 谢谢 大朗", "爷爷想要拐杖 东城", "屋企冇饭台 食饭都系蹲喺度 想要张饭台"]
)
def test_a_town_a_thanks_or_a_clause_after_a_space_is_no_thing(text: str) -> None:
    assert len(read_items(text, []).items) == 1


def test_a_conjunction_or_a_lone_first_character_the_model_took_is_dropped() -> None:
    assert recall.model_values("想要盏台灯同书台", ["台", "台灯", "同书台"]) == ["台灯", "书台"]
    assert read_items("想要盏台灯同书台", ["台", "台灯", "同书台"]).items == ("台灯", "书台")


def test_rubbish_named_with_rubbish_is_two_items() -> None:
    assert read_items("后山有好多落叶同垃圾冇人扫", ["垃圾"], wish=False).items == ("落叶", "垃圾")


def test_a_second_thing_broken_too() -> None:
    assert read_items("公园啲秋千断咗，滑梯又裂咗", ["秋千"], wish=False).items == ("秋千", "滑梯")
    assert read_items("小区路灯坏咗好耐 物业也不管", ["路灯"], wish=False).items == ("路灯",)


@pytest.mark.parametrize(
    ("text", "model", "wish", "expected"),
    [
        ("阿妈想要个热水袋或者电暖炉都得", ["热水袋"], True, ("热水袋", "电暖炉")),  # an alternative offered
        ("个仔学琴 想要部电子琴练习", ["电子琴练习"], True, ("电子琴",)),  # what it is for
        ("屋企张旧台烂咗 想要过张台", ["旧台"], True, ("台",)),  # an old one is the same thing
        ("阿婆屋企冇茶几冇衣架", [], True, ("茶几", "衣架")),  # lacking one thing after another
        ("村口啲路灯灯罩跌咗", ["路灯灯罩"], False, ("灯罩",)),  # a part named from the whole
        ("学校门口啲公厕门锁坏咗", ["公厕门锁"], False, ("门锁",)),  # a known part of a facility
        ("后巷的渠盖不见了，晚上很容易掉下去", ["渠盖"], False, ("渠盖",)),  # a word of manner
        ("图书馆门口冇斜坡 轮椅入唔到", ["斜坡", "轮椅"], False, ("斜坡",)),  # who cannot reach the place
    ],
)
def test_values_refined_round_12(text: str, model: list[str], wish: bool, expected: tuple[str, ...]) -> None:
    assert read_items(text, model, wish=wish).items == expected


@pytest.mark.parametrize(
    ("text", "model", "wish", "expected"),
    [
        ("阿妹读初中 想要个书包同个水壶 仲有本英文词典", ["书包", "词典"], True, ("书包", "水壶", "词典")),
        ("啲被铺发霉 想要过新嘅被铺同床单", ["被铺"], True, ("被铺", "床单")),  # 被 is no passive here
        ("村尾条水管破咗 啲水流晒出嚟", [], False, ("水管",)),  # 破 says what is wrong
    ],
)
def test_things_after_a_list_word_or_a_break_round_12(
    text: str, model: list[str], wish: bool, expected: tuple[str, ...]
) -> None:
    assert read_items(text, model, wish=wish).items == expected


@pytest.mark.parametrize(
    ("text", "model", "wish", "expected"),
    [
        ("阿妈想报个书法班 识多啲字", ["书法"], True, ("书法班",)),  # a class: its whole name
        ("社区想搞个四点半课堂俾啲细路做功课", [], False, ("四点半课堂",)),
        ("阿爸要透析 每次来回车费都负担唔起", [], True, ("车费",)),  # a fee not payable, not how often
        (
            "村尾条机耕路坑坑洼洼 一落雨就积水",
            [],
            False,
            ("机耕路",),
        ),  # what the road is like says what is wrong
    ],
)
def test_classes_fees_and_rough_roads_round_12(
    text: str, model: list[str], wish: bool, expected: tuple[str, ...]
) -> None:
    assert read_items(text, model, wish=wish).items == expected


@pytest.mark.parametrize(
    ("text", "wish", "expected"),
    [
        ("屋企穷 三个细路买不起校裤", True, ("校裤",)),  # what cannot be bought, not "不起校裤"
        ("村口鱼塘啲水发晒臭 好多蚊", False, ("鱼塘",)),  # the place the water is in
        ("后山斜坡啲泥一落雨就冲落嚟", False, ("斜坡",)),
    ],
)
def test_what_cannot_be_bought_and_where_water_or_mud_is(
    text: str, wish: bool, expected: tuple[str, ...]
) -> None:
    assert read_items(text, [], wish=wish).items == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("阿妹想学古筝 屋企冇钱俾佢学", ("古筝",)),
        ("我想学电焊 有冇免费培训", ("电焊",)),  # the skill, not 免费
    ],
)
def test_what_the_resident_wants_to_learn(text: str, expected: tuple[str, ...]) -> None:
    assert read_items(text, []).items == expected


def test_staples_lacking_rubbish_dumped_and_what_anyone_gives() -> None:
    assert read_items("阿伯屋企冇米冇盐", []).items == ("米", "盐")
    assert read_items("半夜有人喺巷口偷倒余泥", [], wish=False).items == ("余泥",)
    assert "暖水袋" in recall._more("有冇暖水袋派 阿婆对脚好冻", [])
