"""Whom a wish is for when the speaker's household is named (nlu/beneficiary.py, through `read_beneficiary`).
Invented sentences, not taken from an evaluation set; each fails on the reading before its mechanism unless marked
as a guard."""

from __future__ import annotations

import pytest

from bot.conversation.dialogue.slots import read_beneficiary


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("我老婆日日返工 我自己膝头痛 想要对护膝", "老婆"),
        ("我个女嫁咗人 我自己一个人住 想要个平安钟", None),
        ("我老公成日出车 我自己耳仔唔好 想要个助听器", "老公"),
    ],
)
def test_the_speaker_in_need_is_the_recipient_not_the_household_named(text: str, model: str | None) -> None:
    assert read_beneficiary(text, model) is None


def test_a_person_the_speaker_asks_for_is_still_the_recipient() -> None:
    """Guard: 帮 names the recipient even when the speaker's own ailment is told."""
    assert read_beneficiary("我自己腰骨痛 想帮阿妈申请部轮椅", None) == "阿妈"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("孙发烧成日入医院 想要个体温计", "孙"),  # a short kin word opening the message
        ("俺娘眼睛不好 想要个放大镜", "娘"),  # 俺: "my" in northern speech
        ("阿爷手机冇咗话费 想帮佢交", "阿爷"),  # whose phone, not a kind of phone
    ],
)
def test_kin_words_at_the_start_after_an_or_before_their_phone_are_read(text: str, expected: str) -> None:
    assert read_beneficiary(text, None) == expected


def test_a_kind_of_phone_for_a_group_is_no_recipient() -> None:
    """Guard: 老人手机 is a kind of phone."""
    assert read_beneficiary("想申请部老人手机", None) is None
