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


def test_two_staples_the_model_tags_side_by_side_stay_two() -> None:
    assert read_items("年尾想申请啲米油 俾隔离阿婆", ["米", "油"]).items == ("米", "油")


def test_an_illness_is_no_item() -> None:
    assert read_items("个孙近视 眼镜打烂咗", ["近视", "眼镜"]).items == ("眼镜",)


def test_an_errand_is_the_need_not_what_it_is_for() -> None:
    assert read_items("想有人陪阿爷去医院拎药", ["拎药"]).items == ("陪",)


def test_a_side_of_the_whole_gives_the_whole() -> None:
    assert read_items("羽毛球场地面凹晒", ["羽毛球场"], wish=False).items == ("羽毛球场",)


def test_money_help_in_general_is_no_thing() -> None:
    assert read_items("屋企好困难 想申请救济", []).items == ()


def test_what_a_thing_guards_against_is_a_modifier() -> None:
    assert surface.plain("防抖餐具") == "餐具"
    assert surface.plain("防滑垫") == "防滑垫"  # a one-character head keeps its name


def test_things_counted_as_there_in_a_project() -> None:
    assert read_items("巷口有两架摩托车停咗成年", [], wish=False).items == ("摩托车",)


def test_traditional_characters_are_read_and_given_back_as_written() -> None:
    assert surface.simplify("想要部輪椅").text == "想要部轮椅"
    assert surface.simplify("想要部輪椅").reopen("轮椅") == "輪椅"
    assert read_items("我嫲嫲個雪櫃壞咗 想申請部新嘅", []).items == ("雪櫃",)
    assert read_items("阿爺行路唔穩 想要支拐杖同埋一部輪椅", []).items == ("拐杖", "輪椅")
    assert read_items("村口啲路燈壞咗好耐", [], wish=False).items == ("路燈",)
    assert read_beneficiary("阿爺行路唔穩 想要支拐杖", None) == "阿爺"


def test_a_determiner_or_classifier_taken_along_is_no_part_of_the_name() -> None:
    assert surface.plain("单车棚个", "小区单车棚个顶穿咗") == "单车棚"
    assert surface.plain("啲座椅", "看台啲座椅烂晒") == "座椅"
    assert surface.plain("条班马线", "门口条班马线褪晒色") == "班马线"  # a name the lexicon does not know
    assert surface.plain("对讲机", "楼下对讲机坏咗") == "对讲机"  # 对 starts the word here


def test_a_known_thing_written_with_a_homophone_is_read_and_given_back_as_written() -> None:
    assert read_items("阿伯个电饭果坏咗 想申请过个", ["电饭"]).items == ("电饭果",)
    assert read_items("阿婆行唔郁 想要架轮以", []).items == ("轮以",)
    assert read_items("楼下个沙井该冇咗 好危险", ["沙井"], wish=False).items == ("沙井该",)
    assert read_items("村尾冇路登 夜晚好黑", [], wish=False).items == ("路登",)
    assert surface.simplify("想要部电饭保").reopen("电饭煲") == "电饭保"
    assert surface.simplify("我想要几张凳").text == "我想要几张凳"  # no known thing's spelling: unchanged


def test_a_manhole_cover_is_one_thing() -> None:
    assert read_items("后巷个沙井盖唔见咗", ["井盖"], wish=False).items == ("沙井盖",)


def test_what_a_thing_is_made_of_or_its_language_is_a_modifier() -> None:
    assert read_items("屋企冇凳坐 想申请两张塑料凳", ["塑料凳"]).items == ("凳",)
    assert surface.plain("英文词典") == "词典"
    assert surface.plain("铁闸") == "铁闸"  # no known thing after the material: the name itself


def test_road_words_written_with_a_homophone() -> None:
    assert read_items("后巷条下水到塞咗 好臭", ["下水"], wish=False).items == ("下水到",)
    assert read_items("幼儿园门口想整条减速代", ["减速"], wish=False).items == ("减速代",)


def test_size_and_users_are_modifiers_before_a_known_thing() -> None:
    assert surface.plain("大号尿片") == "尿片"
    assert surface.plain("儿童滑梯") == "滑梯"
    assert surface.plain("无障碍坡道") == "坡道"
    assert surface.plain("无障碍通道") == "无障碍通道"  # 通道 alone names no known thing
    assert surface.plain("儿童乐园") == "儿童乐园"


def test_a_light_bulb_in_cantonese_is_a_thing() -> None:
    assert read_items("阿伯屋企个灯胆坏咗 想有人帮手换灯胆", []).items == ("灯胆",)
