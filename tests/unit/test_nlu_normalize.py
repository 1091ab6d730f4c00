"""Slot normalisation: what the resident writes → what the case records."""

from __future__ import annotations

import pytest

from bot.conversation.nlu import KeywordNLU, normalize, town_data
from bot.conversation.nlu.normalize import (
    find_case_no,
    find_town,
    normalize_town,
    parse_quantity,
    parse_score,
    suggest_category,
)
from reference import towns
from reference.privacy import mask_phone, normalize_phone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("樟木头", "樟木头镇"),
        ("樟木头镇", "樟木头镇"),
        ("厚街", "厚街镇"),
        ("虎门镇", "虎门镇"),
        ("莞城", "莞城街道"),
        ("南城区", "南城街道"),
        ("东莞市长安镇", "长安镇"),
        ("松山湖园区", "松山湖"),
        ("大岭山", "大岭山镇"),
        ("望牛墩", "望牛墩镇"),
        ("漳木头", "樟木头镇"),
        ("塘下", "塘厦镇"),
        ("麻冲", "麻涌镇"),
        ("高步", "高埗镇"),
        ("辽步", "寮步镇"),
        (" 道滘 ", "道滘镇"),
        ("ＨＯＵ", None),
        ("北京", None),
        ("", None),
    ],
)
def test_normalize_town(text: str, expected: str | None) -> None:
    assert normalize_town(text) == expected


def test_every_town_by_full_and_short_name() -> None:
    for town in towns.TOWNS:
        assert normalize_town(town.name) == town.name
        assert normalize_town(town.short) == town.name
        assert find_town(f"我住在{town.short}那边") == town.name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我爸中风后走不了路，想要一辆轮椅，我们住在厚街镇", "厚街镇"),
        ("住樟木头好多年了", "樟木头镇"),  # jieba's own dictionary would split 樟木/头
        ("我在虎门这边", "虎门镇"),
        ("屋企喺寮步 想要个助听器", "寮步镇"),
        ("北京长安街的路灯", None),  # 长安 inside 长安街 is not the town
        ("买个樟木箱", None),
        ("村口路灯坏了", None),
    ],
)
def test_find_town_in_sentence(text: str, expected: str | None) -> None:
    assert find_town(text) == expected


def test_find_towns_keeps_order_and_dedupes() -> None:
    assert normalize.find_towns("不对，是厚街不是虎门，厚街镇") == ["厚街镇", "虎门镇"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("两台", 2),
        ("三袋米", 3),
        ("一百斤", 100),
        ("要5个", 5),
        ("十二包纸尿裤", 12),
        ("两百五十斤大米", 250),
        ("3", 3),
        ("一辆轮椅", 1),
        ("想要轮椅", None),
        ("几台", None),
        ("", None),
    ],
)
def test_parse_quantity(text: str, expected: int | None) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("+86 13812345678", "13812345678"),
        ("+86-138-1234-5678", "13812345678"),
        ("我的电话是１３８１２３４５６７８谢谢", "13812345678"),
        ("0769-22334455", "076922334455"),
        ("0769 2233 4455", "076922334455"),
        ("电话076922334455", "076922334455"),
        ("12812345678", None),  # no mobile starts with 12
        ("1381234567", None),  # ten digits
        ("138123456789", None),  # twelve digits
        ("020-12345678", None),  # not a Dongguan landline
        ("没有电话", None),
    ],
)
def test_normalize_phone(text: str, expected: str | None) -> None:
    assert normalize_phone(text) == expected


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("138 1234 5678", "138****5678"),
        ("0769-22334455", "0769-****4455"),
        ("076922334455", "0769-****4455"),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked
    assert phone.replace(" ", "").replace("-", "")[3:7] not in mask_phone(phone)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("帮我查下MS20261123-0007", "MS20261123-0007"),
        ("ms20261123-0007", "MS20261123-0007"),
        ("MS 20261123 0007", "MS20261123-0007"),
        ("MS202611230007", "MS20261123-0007"),
        ("MS2026112-0007", None),
        ("XMS20261123-00071", None),
        ("查下MS20261123-10000", "MS20261123-10000"),  # a day past 9,999 cases: the serial has five digits
        ("MS20261123-1234567", None),
        ("查询进度", None),
    ],
)
def test_find_case_no(text: str, expected: str | None) -> None:
    assert find_case_no(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", 5),
        ("1", 1),
        ("五分", 5),
        ("打4分", 4),
        ("三星", 3),
        ("很满意", 5),
        ("非常满意", 5),
        ("满意", 4),
        ("一般", 3),
        ("一般般", 3),
        ("不满意", 2),
        ("不太满意", 2),
        ("很不满意", 1),
        ("非常差", 1),
        ("6", None),
        ("你好", None),
        ("", None),
    ],
)
def test_parse_score(text: str, expected: int | None) -> None:
    assert parse_score(text) == expected


@pytest.mark.parametrize(
    ("kind", "text", "item", "expected"),
    [
        ("micro_wish", "我爸中风后走不了路，想要一辆轮椅", "轮椅", "助残"),
        ("micro_wish", "孩子上网课没有电脑", "电脑", "助学"),
        ("micro_wish", "我妈糖尿病药费负担不起", None, "助医"),
        ("micro_wish", "独居老人想有人上门陪伴", "陪伴", "助老"),
        ("micro_wish", "家里困难想要两袋米一桶油", "米", "生活物资"),
        ("micro_wish", "我失业半年想找份工作", "工作", "就业帮扶"),
        ("micro_wish", "老伴走后成日失眠想找人倾诉", None, "心理关爱"),
        ("micro_wish", "想拍一张全家福", None, "其他"),
        ("micro_project", "村口路灯坏了好黑", "路灯", "照明"),
        ("micro_project", "学校门口想装减速带", "减速带", "道路交通"),
        ("micro_project", "楼梯口想装扶手", "扶手", "公共设施"),
        ("micro_project", "下水道堵了好臭", "下水道", "环境卫生"),
        ("micro_project", "想建个篮球场", "篮球场", "文体设施"),
        ("micro_project", "井盖不见了好危险", "井盖", "安全隐患"),
        ("micro_project", "社区想搞个长者饭堂", None, "其他"),
    ],
)
def test_suggest_category(kind: str, text: str, item: str | None, expected: str) -> None:
    assert suggest_category(kind, text, item) == expected
    categories = normalize.WISH_CATEGORIES if kind == "micro_wish" else normalize.PROJECT_CATEGORIES
    assert expected in categories


def test_rasa_town_data_in_sync_with_normalize() -> None:
    """nlu_data/data/towns.yml and the jieba dictionary are generated from TOWN_VARIANTS; regenerate on drift."""
    assert (town_data.PROJECT_DIR / "data" / "towns.yml").read_text(
        encoding="utf-8"
    ) == town_data.towns_yml_text()
    userdict = (town_data.PROJECT_DIR / "jieba" / "jieba_userdict.txt").read_text(encoding="utf-8")
    assert userdict == town_data.userdict_text()
    assert "樟木头镇 2000 ns" in userdict


@pytest.mark.parametrize(
    ("text", "intent", "entities"),
    [
        (
            "我爸中风后走不了路，想要一辆轮椅，我们住在厚街镇",
            "micro_wish",
            {"town": "厚街镇", "item": "轮椅"},
        ),
        ("村口路灯坏了晚上好黑 在石碣", "micro_project", {"town": "石碣镇", "item": "路灯"}),
        ("查询进度", "query_progress", {}),
        ("帮我查下ms20261123-0007", "query_progress", {"case_no": "MS20261123-0007"}),
        ("取消MS20261123-0007", "cancel_request", {"case_no": "MS20261123-0007"}),
        ("5", "rate_service", {}),
        ("很满意", "rate_service", {}),
        ("你好", "greet", {}),
        ("我想做义工", "offer_help", {}),
        ("社保怎么交", "out_of_scope", {}),
        ("好的", "affirm", {}),
        ("不是", "deny", {}),
        ("想要两台风扇 电话138 1234 5678", "micro_wish", {"quantity": "2", "phone": "13812345678"}),
    ],
)
async def test_keyword_nlu(text: str, intent: str, entities: dict[str, str]) -> None:
    parse = await KeywordNLU().parse(text)
    assert parse.intent == intent
    assert parse.source == "keyword"
    for name, value in entities.items():
        assert parse.first(name) == value


@pytest.mark.parametrize(
    ("text", "word", "town", "quantity"),
    [
        ("我住虎門 想要兩個輪椅", "虎門", "虎门镇", 2),
        ("長安鎮嘅阿婆要三張棉被", "長安鎮", "长安镇", 3),
        ("東城 一雙鞋", "東城", "东城街道", 1),
        ("橋頭村口盞燈壞咗兩隻", "橋頭", "桥头镇", 2),
    ],
)
def test_traditional_characters_name_the_same_town_and_quantity(
    text: str, word: str, town: str, quantity: int
) -> None:
    assert find_town(text) == town and normalize_town(word) == town
    assert parse_quantity(text) == quantity


def test_a_case_number_entity_is_read_whole_from_the_text() -> None:
    """Rasa's regex takes four digits of the serial; the case number is the text's own, whole."""
    from bot.conversation.nlu.postprocess import finalize_entities
    from bot.conversation.nlu.types import Entity

    text = "查MS20261123-10000"
    [ent] = finalize_entities(text, [Entity("case_no", "MS20261123-1000", "MS20261123-1000", 1, 16)])
    assert ent.value == "MS20261123-10000"
    assert finalize_entities("查进度", [Entity("case_no", "MS20261123-1000", "MS20261123-1000", 1, 16)]) == ()
