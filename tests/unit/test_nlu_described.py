"""Things joined by a conjunction or a list word where a description ending in 的/嘅/之 stands before one of them
(nlu/described.py), and the quantity of a request that names several things (nlu/counted.py)."""

from __future__ import annotations

import pytest

from bot.conversation.dialogue.slots import read_items
from bot.conversation.nlu.counted import shared


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("想要轮椅同埋软啲嘅枕头", ("轮椅", "枕头")),  # degree
        ("想申请助行器同夜晚用嘅尿片", ("助行器", "尿片")),  # time and purpose
        ("想要拐杖和冬天的毛毯", ("拐杖", "毛毯")),  # season
        ("想要面同埋小朋友着的校服", ("面", "校服")),  # the first thing is not part of the description
        ("想要轮椅，还有落雨着的雨衣", ("轮椅", "雨衣")),  # a comma and a list word
        ("想要护理床以及俾老人家用嘅保暖内衣", ("护理床", "保暖内衣")),  # a verb phrase
        ("阿爷瞓咗喺床好耐 想申请张气垫床 同埋冷天着嘅棉衣三件", ("气垫床", "棉衣")),
    ],
)
def test_a_thing_after_a_description_in_a_list_is_read(text: str, expected: tuple[str, ...]) -> None:
    assert read_items(text, []).items == expected


@pytest.mark.parametrize(
    ("text", "items", "read", "expected"),
    [
        ("想要三包米同一桶油", ["米", "油"], 3, None),  # counted differently
        ("想要张轮椅同埋冬天嘅棉衣三件", ["轮椅", "棉衣"], 3, None),  # only one counted
        ("想要轮椅同拐杖", ["轮椅", "拐杖"], None, None),
        ("想要三张棉被同三个枕头", ["棉被", "枕头"], 3, 3),  # each counted alike
        ("想要两张厚啲嘅棉被同两个枕头", ["棉被", "枕头"], 2, 2),
        ("想要五包米", ["米"], 5, 5),  # a single thing keeps its quantity
        ("想要三包米同一桶油；不对，要两包米同两桶油", ["米", "油"], 3, 2),  # the later count
    ],
)
def test_several_things_share_a_quantity_only_when_each_is_counted_alike(
    text: str, items: list[str], read: int | None, expected: int | None
) -> None:
    assert shared(text, items, read) == expected
