"""reference/privacy.py at the edges of its rules, each outcome written by hand from the rules in its docstring:

- a mobile (11 digits from 1) shows as 138****5678, also after a +86/86 country code (13 digits in all);
- a landline is an area code (010, 020–029: three digits; others four) and 7–8 digits, 10 to 12 digits in all,
  and shows as 0769-****5678;
- anything else keeps only its last four characters;
- a phone field is one number or nothing; 86 is a country code only in front of 11 more digits;
- log handles are short, stable, and never fail on odd text; openids show their first 3 and last 4 characters;
- public wording must not hold an address or a person named by surname and form of address.
"""

from __future__ import annotations

import pytest

from reference.privacy import (
    contains_address,
    contains_named_person,
    mask_openid,
    mask_phone,
    normalize_phone,
    parse_phone_field,
    pseudonym,
)


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("020-1234567", "020-****4567"),  # three-digit area + 7 digits: 10 digits, the shortest landline
        ("0201234567", "020-****4567"),
        ("0769-2212345", "0769-****2345"),  # 11 digits
        ("0769-22123456", "0769-****3456"),  # 12 digits, the longest
        ("0769221234567", "*********4567"),  # 13 digits from 0: no landline
        ("076922123", "*****2123"),  # 9 digits from 0: no landline
        ("23456789012", "*******9012"),  # 11 digits, not from 1 or 0
        ("2345678901", "******8901"),  # 10 digits
        ("234567890123", "********0123"),  # 12 digits
        ("8613812345", "******2345"),  # 86 and too few digits for a mobile behind it
        ("8623812345678", "*********5678"),  # 13 digits from 86, but 2 is no mobile's first digit
        ("+86 13812345678", "138****5678"),
    ],
)
def test_mask_phone_edges(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("2213812345678", None),  # 13 digits not from 86: not a number with a country code
        ("0013812345678", None),  # 00 without 86
        ("86138123456", None),  # 86 and 9 digits
        ("+86 138 1234 5678", "13812345678"),
    ],
)
def test_parse_phone_field_edges(raw: str, parsed: str | None) -> None:
    assert parse_phone_field(raw) == parsed


def test_pseudonyms_of_nothing_are_a_dash() -> None:
    assert pseudonym("") == "-"
    assert pseudonym(None) == "-"


@pytest.mark.parametrize("value", ["oAbcdefg123", "MS20261123-0001", "\ud800broken", "居民"])
def test_pseudonym_is_twelve_hex_digits_whatever_the_text(value: str) -> None:
    handle = pseudonym(value)
    assert len(handle) == 12
    assert all(c in "0123456789abcdef" for c in handle)
    assert handle == pseudonym(value)
    assert value not in handle


def test_pseudonyms_of_different_values_differ() -> None:
    handles = {pseudonym(f"oUser{i}") for i in range(200)}
    assert len(handles) == 200


@pytest.mark.parametrize(
    ("openid", "shown"),
    [
        ("oAbcdefgx9Yz", "oAb***x9Yz"),
        ("oAbcdefg9", "oAb***efg9"),  # 9 characters: still the first 3 and the last 4
        ("oAbcdef9", "***"),  # 8 or fewer: nothing of it
        ("o", "***"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_openid(openid: str | None, shown: str) -> None:
    assert mask_openid(openid) == shown


@pytest.mark.parametrize(
    "text",
    [
        "住在幸福路8号",
        "3栋2单元501室",
        "新村三巷",
        "东城12幢",
        "B座 5 层",
        "２号楼",  # full-width digit
        "十二号",
        "住5楼",
        "门牌看不清",
        "房号不方便说",
    ],
)
def test_addresses_are_found(text: str) -> None:
    assert contains_address(text) is True


@pytest.mark.parametrize(
    "text",
    ["家里需要一张棉被和一袋米", "孩子上三年级", "想要一辆轮椅", "楼下有台阶", "", None],
)
def test_wording_without_an_address(text: str | None) -> None:
    assert contains_address(text) is False


@pytest.mark.parametrize(
    "text",
    [
        "陈伯行动不便",
        "给王阿姨送米",
        "李奶奶需要助听器",
        "张先生来电",
        "阿陈",
        "老李腿脚不好",
        "小王同学",
        "刘某",
    ],
)
def test_named_people_are_found(text: str) -> None:
    assert contains_named_person(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "一位老人行动不便",
        "老年人需要助餐",
        "小区路灯坏了",
        "阿姨说谢谢",
        "老师推荐",
        "小学生要书包",
        "",
        None,
    ],
)
def test_wording_without_a_named_person(text: str | None) -> None:
    assert contains_named_person(text) is False


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("10086 13812345678", "13812345678"),
        ("打过10086 我的是 138 1234 5678", "13812345678"),
        ("住3栋 1202 电话 13826951234", "13826951234"),
        ("2024 13826951234", "13826951234"),
        ("0086 138 2695 1234", "13826951234"),
        ("(+86) 138-2695-1234", "13826951234"),
        ("一三八 二六九五 一二三四", "13826951234"),
        ("办公室 0769-2212 3456", "076922123456"),
        ("10086", None),
        ("138123456789", None),
        ("房号 1202 楼层 12", None),
    ],
)
def test_phone_beside_other_numbers(text: str, phone: str | None) -> None:
    # oracle: the number a person reading the text would dial (written by hand, not read back from the code)
    assert normalize_phone(text) == phone
