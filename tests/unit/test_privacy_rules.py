"""The privacy rules of reference/privacy.py against hand-written expectations (from the rules in its docstring,
not from the code): masks of mobiles, landlines, ID cards and other values; normalising and parsing phone fields;
free text with numbers written the ways residents write them."""

from __future__ import annotations

import pytest

from reference.privacy import (
    contains_personal_number,
    mask_id_card,
    mask_phone,
    mask_text,
    normalize_phone,
    parse_phone_field,
    pseudonym,
)


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+86 138 1234 5678", "138****5678"),
        ("8613812345678", "138****5678"),
        ("0769-22123456", "0769-****3456"),
        ("020-87654321", "020-****4321"),
        ("07692212345", "0769-****2345"),  # 0769 + 7 digits
        ("12345", "*2345"),
        ("1234", "****"),
        ("12", "**"),
        ("", ""),
        ("   ", ""),
        (None, ""),
    ],
)
def test_mask_phone(raw: str | None, masked: str) -> None:
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("44190019800101123X", "441900********123X"),
        (" 44190019800101123X ", "441900********123X"),
        ("1234567890", "**********"),
        ("12345678901", "123456*8901"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_id_card(raw: str | None, masked: str) -> None:
    assert mask_id_card(raw) == masked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的电话是 13812345678 谢谢", "13812345678"),
        ("一三八 一二三四 五六七八", "13812345678"),
        ("幺三八-1234-5678", "13812345678"),
        ("座机0769-22123456", "076922123456"),
        ("先打0769 2212 3456，不通再打13812345678", "076922123456"),  # the first one in the text
        ("+86 138 1234 5678", "13812345678"),
        ("没有号码", None),
        ("1381234567", None),  # ten digits
        ("", None),
        (None, None),
    ],
)
def test_normalize_phone(text: str | None, expected: str | None) -> None:
    assert normalize_phone(text) == expected


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("138 1234 5678", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("(0769) 22123456", "0769-22123456"),
        ("02087654321", "020-87654321"),
        ("0769-2212345", "0769-2212345"),
        ("12345", None),
        ("138123456789", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_phone_field(raw: str | None, parsed: str | None) -> None:
    assert parse_phone_field(raw) == parsed


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("电话13812345678，身份证44190019800101123X", "电话138****5678，身份证441900********123X"),
        ("打１３８１２３４５６７８找我", "打138****5678找我"),
        ("一三八一二三四五六七八", "138****5678"),
        ("座机 0769-22123456 白天有人", "座机 0769-****3456 白天有人"),
        ("订单号 20260302 不是电话", "订单号 20260302 不是电话"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_text(text: str | None, masked: str) -> None:
    assert mask_text(text) == masked


def test_contains_personal_number() -> None:
    assert contains_personal_number("联系13812345678")
    assert not contains_personal_number("门口有两级台阶")
    assert not contains_personal_number("")
    assert not contains_personal_number(None)


def test_pseudonym_is_stable_short_and_not_the_value() -> None:
    a, b = pseudonym("oAbcdefg123"), pseudonym("oAbcdefg124")
    assert a == pseudonym("oAbcdefg123") and a != b
    assert "oAbcdefg123" not in a and 0 < len(a) <= 16
    assert pseudonym("") == pseudonym(None)
