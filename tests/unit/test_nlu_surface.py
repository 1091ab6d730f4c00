"""The surface of a message (nlu/surface.py): spaces voice input puts inside a word, a brand, a lone classifier.
Invented sentences; each test fails without its mechanism."""

from __future__ import annotations

from bot.conversation.dialogue.slots import read_beneficiary, read_items
from bot.conversation.nlu import surface


def test_a_word_split_by_voice_input_is_read_whole_and_given_back_as_written() -> None:
    assert read_items("阿爷想要部制 氧 机", []).items == ("制 氧 机",)
    assert read_beneficiary("帮我外 婆 申请张护理床", None) == "外 婆"


def test_spaces_between_clauses_stay() -> None:
    assert surface.close("我个孙 想要 书包").text == "我个孙 想要 书包"
    assert surface.close("想要个雾 化 机").text == "想要个雾化机"


def test_a_brand_is_no_part_of_the_thing() -> None:
    assert read_items("想申请一部美的电饭煲", []).items == ("电饭煲",)
    assert surface.plain("海尔洗衣机") == "洗衣机"


def test_a_lone_classifier_the_model_took_along_is_dropped() -> None:
    assert read_items("想要袋面粉", ["袋面粉"]).items == ("面粉",)
    assert read_items("啲台凳烂晒", ["台凳"], wish=False).items == (
        "台凳",
    )  # after a determiner, no classifier
    assert surface.plain("台灯") == "台灯"  # a thing whose name starts like a classifier stays
