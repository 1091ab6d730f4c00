"""How one request is taken, through the simulator, the real webhook, the real Rasa model and a real database:
one request naming several things (or one thing twice) stays one case; a second case only when the resident
says a second matter follows; visits are a need with an item; corrections inside a sentence and at the summary;
an unambiguous cancel at the summary; a request after asking for a person; a Cantonese opener before a request.

The sentences are written for these tests (not taken from tests/conversations/ or the training data)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from bot import keys
from bot.models import Case, Conversation, Resident
from tests.helpers import System

pytestmark = pytest.mark.rasa
CASE_NO = re.compile(r"MS\d{8}-\d{4}")


async def cases_of(system: System, openid: str) -> list[Case]:
    async with system.app[keys.SESSIONS]() as s:
        resident = (await s.exec(select(Resident).where(Resident.openid == openid))).scalars().one()
        return list((await s.exec(select(Case).where(Case.resident_id == resident.id))).scalars())


async def state_of(system: System, openid: str) -> str:
    async with system.app[keys.SESSIONS]() as s:
        resident = (await s.exec(select(Resident).where(Resident.openid == openid))).scalars().one()
        conv = (
            (await s.exec(select(Conversation).where(Conversation.resident_id == resident.id)))
            .scalars()
            .one()
        )
        return conv.state


async def to_summary(user: Any, first: str) -> str:
    """Says `first`, agrees to the privacy notice, declines the phone; returns the summary."""
    r = await user.send_text(first)
    if "同意" in r.text:
        r = await user.send_text("同意")
    for _ in range(3):
        if "请核对" in r.text:
            return str(r.text)
        if "电话" in r.text:
            r = await user.send_text("不用")
    raise AssertionError(f"no summary: {r.text}")


async def test_one_request_naming_two_things_is_one_case_with_both(chat: System) -> None:
    user = chat.user()
    summary = await to_summary(user, "屋里断粮了 想要些面粉和花生油 我住望牛墩")
    assert "面粉" in summary and "花生油" in summary, summary
    r = await user.send_text("确认")
    assert CASE_NO.search(r.text) and "还提到" not in r.text, r.text
    [case] = await cases_of(chat, user.openid)
    assert case.kind == "micro_wish" and case.town == "望牛墩镇"
    assert "面粉" in (case.item or "") and "花生油" in (case.item or "")
    assert await state_of(chat, user.openid) == "idle"


async def test_the_same_thing_said_twice_and_a_body_part_are_not_second_requests(chat: System) -> None:
    user = chat.user()
    await to_summary(user, "我腰不好 家里的被子又薄又旧 冬天想换一床厚棉被 在洪梅")
    r = await user.send_text("确认")
    assert CASE_NO.search(r.text) and "还提到" not in r.text, r.text
    [case] = await cases_of(chat, user.openid)
    assert "被" in (case.item or "") and "腰" not in (case.item or "")


async def test_a_second_matter_said_as_such_becomes_a_second_case(chat: System) -> None:
    user = chat.user()
    await to_summary(user, "我阿爸想要一副拐杖 另外还有个事 我们巷子口的路灯坏了 都在中堂")
    r = await user.send_text("确认")
    assert CASE_NO.search(r.text) and "请核对" in r.text and "路灯" in r.text, r.text
    r = await user.send_text("确认")
    assert CASE_NO.search(r.text), r.text
    kinds = sorted((c.kind, c.item) for c in await cases_of(chat, user.openid))
    assert kinds == [("micro_project", "路灯"), ("micro_wish", "拐杖")], kinds


async def test_a_visit_is_a_wish_with_an_item(chat: System) -> None:
    user = chat.user()
    await to_summary(user, "我阿爷一个人住 子女都在外省 希望有人每个星期上门看看他 在高埗")
    await user.send_text("确认")
    [case] = await cases_of(chat, user.openid)
    assert case.kind == "micro_wish" and case.town == "高埗镇"
    assert case.item and re.search(r"探访|陪|看望|上门", case.item), case.item


async def test_an_item_corrected_at_the_summary_replaces_the_first(chat: System) -> None:
    user = chat.user()
    summary = await to_summary(user, "我奶奶腿脚不灵 想申请一副拐杖 住在东坑")
    assert "拐杖" in summary
    r = await user.send_text("搞错了 不是拐杖 是助行器")
    assert "助行器" in r.text and "需要：拐杖" not in r.text, r.text
    await user.send_text("确认")
    [case] = await cases_of(chat, user.openid)
    assert case.item == "助行器"


async def test_a_town_corrected_inside_the_sentence_takes_the_second(chat: System) -> None:
    user = chat.user()
    summary = await to_summary(user, "村口那个井盖不见了好危险 在大朗 呃不对 在黄江")
    assert "黄江镇" in summary and "大朗镇" not in summary, summary
    await user.send_text("确认")
    [case] = await cases_of(chat, user.openid)
    assert case.town == "黄江镇"


@pytest.mark.parametrize("cancel", ["算了算了 不报了", "唔搞喇 算啦"])
async def test_a_cancel_of_several_words_at_the_summary_cancels_after_asking(
    chat: System, cancel: str
) -> None:
    user = chat.user()
    await to_summary(user, "我老伴中风了 想要一张护理床 住在谢岗")
    r = await user.send_text(cancel)
    assert "确定不申请" in r.text, r.text  # the draft holds the resident's words: asked once
    r = await user.send_text("是")
    assert "取消" in r.text, r.text
    assert await cases_of(chat, user.openid) == []
    assert await state_of(chat, user.openid) == "idle"


async def test_a_request_after_asking_for_a_person_is_taken(chat: System) -> None:
    user = chat.user()
    r = await user.send_text("转人工")
    assert "电话" in r.text
    r = await user.send_text("不用了 我自己说吧 楼道的灯坏了 在长安")
    if "同意" in r.text:
        r = await user.send_text("同意")
    assert "请核对" in r.text or "电话" in r.text, r.text
    if "电话" in r.text and "请核对" not in r.text:
        r = await user.send_text("不用")
    await user.send_text("确认")
    [case] = await cases_of(chat, user.openid)
    assert case.kind == "micro_project" and case.town == "长安镇"


async def test_a_cantonese_opener_does_not_hide_the_request(chat: System) -> None:
    user = chat.user()
    r = await user.send_text("冇事冇事 我想讲下 我哋条巷啲路灯成个礼拜都唔着 喺企石")
    assert "没完全明白" not in r.text, r.text
    if "同意" in r.text:
        r = await user.send_text("同意")
    if "电话" in r.text:
        r = await user.send_text("不用")
    await user.send_text("确认")
    [case] = await cases_of(chat, user.openid)
    assert case.kind == "micro_project" and case.town == "企石镇"


@pytest.mark.parametrize("first", ["我要个助听器 我听不清 在中堂", "我要个轮椅 我去不了医院 在常平"])
async def test_an_unsure_request_that_names_a_known_thing_is_taken(chat: System, first: str) -> None:
    """Rasa is below its threshold for these plain requests (its best guess is a wish); the thing named and
    the summary's confirmation make a case, where the numbered menu used to lose them."""
    user = chat.user()
    summary = await to_summary(user, first)
    assert "微心愿" in summary, summary
    await user.send_text("确认")
    [case] = await cases_of(chat, user.openid)
    assert case.kind == "micro_wish" and case.item in ("助听器", "轮椅")


async def test_a_request_in_traditional_characters_files_the_same_case(chat: System) -> None:
    """A resident whose phone writes traditional characters: the town routes the case, the thing and how many are
    read, and the case records the thing as the resident wrote it."""
    user = chat.user()
    summary = await to_summary(user, "我阿媽冬天好凍 想要兩張棉被 我哋住喺虎門")
    assert "虎门镇" in summary and "棉被" in summary, summary
    await user.send_text("确认")
    [case] = await cases_of(chat, user.openid)
    assert case.kind == "micro_wish" and case.town == "虎门镇" and case.item == "棉被" and case.quantity == 2
