"""A thing's own compound name (nlu/compounds.py), a broken thing beside another thing asked for (nlu/recall.py),
and the item lexicon by kind (nlu/things.py), through `read_items`. Invented sentences, not taken from an evaluation
set; each fails on the reading before its mechanism unless marked as a guard."""

from __future__ import annotations

import pytest

from bot.conversation.dialogue.slots import read_items
from bot.conversation.nlu.normalize import ITEMS
from bot.conversation.nlu.things import THINGS


def test_a_compound_that_is_the_things_own_name_is_kept() -> None:
    assert read_items("天冻 阿婆想要两套保暖秋衣", [], wish=True).items == ("保暖秋衣",)
    assert read_items("想要部读屏手机", ["手机"], wish=True).items == ("读屏手机",)  # guard


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("阿公想要部老人手机", ("手机",)),  # whom it is for
        ("想要个定位手表俾阿婆", ("手表",)),  # what tracks or alerts
        ("我哋想申请资助学费", ("学费",)),  # help in money
    ],
)
def test_a_modifier_of_a_dropped_class_is_still_dropped(text: str, expected: tuple[str, ...]) -> None:
    """Guards: these pass on the code before and failed on a first version of the rule."""
    assert read_items(text, [], wish=True).items == expected


def test_a_known_thing_and_a_noun_of_its_own_before_a_fault_are_one_name() -> None:
    assert read_items("三楼嘅热水器外机漏水 滴到落楼下", [], wish=False).items == ("热水器外机",)


def test_a_fault_said_as_a_noun_is_no_part_of_the_name() -> None:
    """Guard: 漏水 after a known thing is what is wrong with it, not a second part of its name."""
    assert read_items("街尾个消防栓漏水好耐", [], wish=False).items == ("消防栓",)


def test_a_broken_thing_beside_another_thing_asked_for_is_not_recorded() -> None:
    assert read_items("屋企部电视坏咗 想要部收音机都好", [], wish=True).items == ("收音机",)


def test_a_replacement_or_the_same_thing_again_keeps_both() -> None:
    """Guards: a thing replaced (换) or asked for again is marked where it is broken and where it is asked for."""
    assert set(read_items("屋企个雪柜坏咗 想换个冰箱", [], wish=True).items) == {"雪柜", "冰箱"}
    assert read_items("屋企部电视坏咗 想要部电视", [], wish=True).items == ("电视",)


@pytest.mark.parametrize(
    ("text", "wish", "expected"),
    [
        ("阿婆冬天好冻 得一件薄冷衫", True, ("冷衫",)),  # clothes, a Cantonese name
        ("阿婆冬天冇铺盖 冻到瞓唔着", True, ("铺盖",)),  # bedding
        ("阿爷插住尿管 要用好多尿袋", True, ("尿袋",)),  # aids: the thing used up, not the one in use
        ("阿妹读高中 要用科学计数机", True, ("计数机",)),  # school, a Cantonese name
        ("阿婆想要个电暖炉", True, ("电暖炉",)),  # household: the whole name, not 暖炉
        ("村头水塔成年冇人洗", False, ("水塔",)),  # facilities
        ("后巷沙井成日冒臭气", False, ("沙井",)),
        ("小区个配电箱生锈", False, ("配电箱",)),  # a facility's own name, not 电箱
    ],
)
def test_things_of_each_kind_are_read(text: str, wish: bool, expected: tuple[str, ...]) -> None:
    assert read_items(text, [], wish=wish).items == expected


def test_a_generic_part_glued_to_a_known_thing_gives_the_whole() -> None:
    assert read_items("楼下信箱门甩咗", [], wish=False).items == ("信箱",)
    assert read_items("路口个沙井盖冇咗", [], wish=False).items == ("沙井盖",)  # guard: a name of its own


def test_bedding_counted_by_bed_is_read_without_the_classifier() -> None:
    assert read_items("天冻想要床电热毯", ["床电热毯"], wish=True).items == ("电热毯",)


def test_a_thickness_is_a_modifier() -> None:
    assert read_items("想要一床厚被铺", [], wish=True).items == ("被铺",)


def test_the_kinds_are_words_of_two_characters_or_more_in_the_lexicon() -> None:
    assert all(len(w) >= 2 for w in THINGS)
    assert set(THINGS) <= set(ITEMS)
    # a modifier of a dropped class is no part of a lexicon word (the guide's 电动[轮椅], 塑料[凳])
    assert not any(w.startswith(("电动", "智能", "老人", "成人", "折叠")) for w in THINGS)


def test_what_a_known_thing_guards_against_is_a_modifier() -> None:
    assert read_items("阿爷成日走失 想要条防走失手环", [], wish=True).items == ("手环",)
    assert read_items("路边防护栏烂咗", [], wish=False).items == ("防护栏",)  # guard: nothing guarded against


def test_a_job_sought_beside_a_thing_asked_for_is_no_item() -> None:
    assert read_items("我想搵份散工做 想要部缝纫机", [], wish=True).items == ("缝纫机",)


def test_a_second_known_thing_with_its_own_classifier_and_predicate_is_read() -> None:
    items = read_items("村口啲健身器材甩晒漆 有个扭腰器郁都郁唔到", [], wish=False).items
    assert items == ("健身器材", "扭腰器")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("阿妈洗肾 洗肾费负担唔起", ("洗肾费",)),  # 负担唔起
        ("阿爸要住院 住院按金要三千蚊", ("住院按金",)),  # a deposit, its price
        ("阿嫲做化疗 化疗费每次两千几", ("化疗费",)),
        ("我个孙嘅补习费交唔起", ("补习费",)),  # whose it is
        ("屋企水费同管理费欠咗半年", ("水费", "管理费")),  # listed, owed
        ("想帮阿婆交煤气费", ("煤气费",)),  # paying it
    ],
)
def test_a_fee_said_with_its_price_debt_or_payer_is_the_item(text: str, expected: tuple[str, ...]) -> None:
    assert read_items(text, [], wish=True).items == expected


def test_a_conjunction_glued_to_the_next_fee_gives_its_character_back() -> None:
    assert read_items("想申请学费同校车费", [], wish=True).items == ("学费", "校车费")


@pytest.mark.parametrize(
    ("text", "model", "expected"),
    [
        ("阿婆架轮椅个脚踏甩咗", ["轮椅"], ("脚踏",)),
        ("屋企部吸尘器个滤网烂晒", ["吸尘器"], ("滤网",)),
        ("阿爷部电动轮椅两个轮胎都爆咗", ["轮椅"], ("轮胎",)),
    ],
)
def test_a_part_with_its_own_name_is_the_item_not_the_thing_it_belongs_to(
    text: str, model: list[str], expected: tuple[str, ...]
) -> None:
    assert read_items(text, model, wish=True).items == expected


def test_a_generic_part_still_gives_the_whole() -> None:
    """Guard: 门 is a generic part (the guide)."""
    assert read_items("屋企个衣柜道门甩咗", ["衣柜"], wish=True).items == ("衣柜",)


def test_a_thing_unusable_or_without_power_beside_another_thing_asked_for_is_not_recorded() -> None:
    assert read_items("阿公个收音机冇电咗 想要几粒电池", [], wish=True).items == ("电池",)
    assert read_items("屋企个电饭锅漏电唔敢用 想要个电压力锅", [], wish=True).items == ("电压力锅",)


def test_what_the_resident_needs_most_after_a_copula_is_asked_for() -> None:
    assert read_items("个风扇坏咗 其实我最需要系部洗衣机", [], wish=True).items == ("洗衣机",)


@pytest.mark.parametrize(
    ("text", "model", "expected"),
    [
        ("年尾想申请啲米油盐", ["油盐"], ("米", "油", "盐")),  # staples the model took as one
        ("想要米三包油两桶", ["米三包油"], ("米", "油")),  # things counted one after the other
        ("想要一套棉衣棉裤", ["棉衣棉裤"], ("棉衣", "棉裤")),  # two of a pair
    ],
)
def test_several_things_taken_as_one_are_several(
    text: str, model: list[str], expected: tuple[str, ...]
) -> None:
    assert set(read_items(text, model, wish=True).items) == set(expected)


@pytest.mark.parametrize(
    ("text", "wish", "expected"),
    [
        ("阿爷想要支三脚拐杖", True, ("拐杖",)),  # a count of its parts
        ("想装个马桶边扶手", True, ("扶手",)),  # which side it goes
        ("屋苑后门铁闸关唔埋", False, ("铁闸",)),  # a verb glued before 唔
        ("村尾条泥路烂晒", False, ("路",)),  # mud is a material
    ],
)
def test_modifiers_of_build_side_and_material_and_glued_verbs_are_dropped(
    text: str, wish: bool, expected: tuple[str, ...]
) -> None:
    assert read_items(text, [], wish=wish).items == expected


@pytest.mark.parametrize(
    ("text", "wish", "model", "expected"),
    [
        ("阿婆瘫喺床 想有陪诊服务", True, ["床"], ("陪诊",)),  # a service asked for by name
        ("隧道积水 啲车过唔到", False, ["积水"], ("隧道",)),  # the object, not the hazard
        ("庙前面个墙有条大裂缝", False, [], ("墙",)),  # a crack said with 有条
        ("我自己要搬屋 冇人帮手 清溪", True, ["清溪"], ()),  # a town is no thing
    ],
)
def test_services_by_name_hazards_cracks_and_towns(
    text: str, wish: bool, model: list[str], expected: tuple[str, ...]
) -> None:
    assert read_items(text, model, wish=wish).items == expected


def test_ground_that_is_the_place_of_a_thing_is_no_lexicon_word() -> None:
    assert read_items("成条河堤啲路灯唔着", ["路灯"], wish=False).items == ("路灯",)


@pytest.mark.parametrize(
    ("text", "model", "expected"),
    [
        ("村里面好多野猫 晚黑嗌到人瞓唔着", [], ("野猫",)),  # teeming where a place opens the clause
        ("成个屋苑好多老鼠 想搞下灭鼠", ["灭鼠"], ("老鼠",)),
        ("球场围栏边冇挡网 啲波成日飞出去", ["围栏"], ("挡网",)),  # where the missing thing goes
        ("巷口个旧报亭烂晒 想拆咗装个充电桩", [], ("充电桩",)),  # the old thing to be replaced
    ],
)
def test_projects_pests_after_a_place_missing_things_and_replacements(
    text: str, model: list[str], expected: tuple[str, ...]
) -> None:
    assert read_items(text, model, wish=False).items == expected
