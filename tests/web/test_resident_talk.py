"""The resident's side as people really talk (issue 11), through the real app: the simulator signs and encrypts
like WeChat, real HTTP to the webhook, a real database. Every conversation runs twice: with Rasa unreachable (the
keyword interpreter understands, as in the degraded mode) and with the real Rasa server and model (marked
``rasa``): the dialogue must answer the same whichever reads the message."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot import keys
from bot.conversation.dialogue import texts
from bot.models import CallBack, Case, CaseSeq, Feedback, InboundMessage, Resident
from tests.helpers import System, running_system

CASE_NO = re.compile(r"MS\d{8}-\d{4,6}")


@pytest.fixture(params=["keyword", pytest.param("rasa", marks=pytest.mark.rasa)])
async def keyword_system(
    request: pytest.FixtureRequest, sqlite_url: str, tmp_path: Path
) -> AsyncIterator[System]:
    """The system with the keyword interpreter (Rasa unreachable), then with the real Rasa (the name is the suite's)."""
    rasa = {"rasa_url": request.getfixturevalue("rasa_url")} if request.param == "rasa" else {}
    async with running_system(sqlite_url, tmp_path, **rasa) as s:
        yield s


async def rows(system: System, model: Any, *where: Any) -> list[Any]:
    async with system.app[keys.SESSIONS]() as s:
        return list((await s.exec(select(model).where(*where))).scalars())


async def _to_phone_question(user: Any, first: str = "我爸中风了想要一辆轮椅，住厚街") -> None:
    r = await user.send_text(first)
    assert "同意" in r.text, r.text
    r = await user.send_text("同意")
    assert "电话" in r.text, r.text


async def _filed_and_moved_to(system: System, user: Any, status: str) -> Case:
    """The resident files a wheelchair wish without a phone; staff's work is skipped: the case is put in ``status``."""
    await _to_phone_question(user)
    await user.send_text("不用")
    r = await user.send_text("确认")
    case_no = CASE_NO.search(r.text).group(0)  # type: ignore[union-attr]
    async with system.app[keys.SESSIONS]() as s:
        case = (await s.exec(select(Case).where(Case.case_no == case_no))).scalar_one()
        case.status = status
        s.add(case)
        await s.commit()
    return case


# ------------------------------------------------------------------ greetings and fillers
async def test_a_greeting_before_the_request_is_not_the_case_title(keyword_system: System) -> None:
    user = keyword_system.user()
    r = await user.send_text("喂 你好 我妈瘫在床上好几年了 下不了床 想要个轮椅 我们在虎门")
    assert "同意" in r.text, r.text
    await user.send_text("同意")
    await user.send_text("不用")
    r = await user.send_text("确认")
    case_no = CASE_NO.search(r.text).group(0)  # type: ignore[union-attr]
    [case] = await rows(keyword_system, Case, Case.case_no == case_no)
    assert case.item == "轮椅" and case.title == "轮椅 · 给母亲"
    assert not case.description.startswith(("喂", "你好"))
    r = await user.send_text("查询进度")
    assert "「轮椅 · 给母亲」" in r.text, r.text


@pytest.mark.parametrize("greeting", ["你好", "喂 你好 在吗", "您好！"])
async def test_a_bare_greeting_is_greeted_with_what_the_bot_can_do(
    keyword_system: System, greeting: str
) -> None:
    r = await keyword_system.user().send_text(greeting)
    assert r.text.startswith("您好") and "发语音" in r.text and "轮椅" in r.text, r.text


# ------------------------------------------------------------------ the phone question and cancelling
@pytest.mark.parametrize("answer", ["不用了", "不用留", "不要了", "没有", "不方便", "电话就不留了"])
async def test_no_at_the_phone_question_skips_the_phone_and_keeps_the_draft(
    keyword_system: System, answer: str
) -> None:
    user = keyword_system.user()
    await _to_phone_question(user)
    r = await user.send_text(answer)
    assert "请核对" in r.text and "电话：未留" in r.text and "取消" not in r.text.split("\n")[0], r.text
    r = await user.send_text("确认")
    assert CASE_NO.search(r.text), r.text


async def test_cancelling_a_draft_with_content_asks_once(keyword_system: System) -> None:
    user = keyword_system.user()
    await _to_phone_question(user)
    r = await user.send_text("算了")
    assert "确定不申请" in r.text and "轮椅" in r.text, r.text
    r = await user.send_text("继续")
    assert "电话" in r.text, r.text  # back to the question it was answering
    r = await user.send_text("13812345678")
    assert "请核对" in r.text
    r = await user.send_text("取消")
    assert "确定不申请" in r.text
    r = await user.send_text("是")
    assert "已经取消" in r.text
    assert await rows(keyword_system, Case) == []


async def test_suanle_with_nothing_in_progress_is_a_friendly_word(keyword_system: System) -> None:
    r = await keyword_system.user().send_text("算了")
    assert "有需要随时找我" in r.text and "回复数字" not in r.text, r.text


# ------------------------------------------------------------------ a progress query in the middle of an application
async def test_a_progress_query_while_applying_is_answered_and_the_question_asked_again(
    keyword_system: System,
) -> None:
    """ "查询进度" at the privacy notice, at the phone question and at the summary: the resident's cases, then the
    question they were on; the application goes on and is filed whole, the query not among its messages."""
    user = keyword_system.user()
    r = await user.send_text("我爸中风了想要一辆轮椅，住厚街")
    assert "同意" in r.text, r.text
    r = await user.send_text("查询进度")
    assert r.text.startswith(texts.NO_CASES_YET) and r.text.endswith(texts.PRIVACY_AGAIN), r.text
    r = await user.send_text("同意")
    assert r.text.endswith(texts.ASK_PHONE), r.text
    r = await user.send_text("我的申请进度怎么样了")
    assert r.text.startswith(texts.NO_CASES_YET) and r.text.endswith(texts.ASK_PHONE), r.text
    r = await user.send_text("不用")
    assert "请核对您的申请" in r.text and "电话：未留" in r.text, r.text
    r = await user.send_text("查询进度")
    assert r.text.startswith(texts.NO_CASES_YET) and "请核对您的申请" in r.text, r.text
    r = await user.send_text("确认")
    first = CASE_NO.search(r.text).group(0)  # type: ignore[union-attr]
    [case] = await rows(keyword_system, Case, Case.case_no == first)
    assert case.item == "轮椅" and case.town == "厚街镇" and case.contact_phone is None
    said = [m.text for m in await rows(keyword_system, InboundMessage, InboundMessage.case_id == case.id)]
    assert "我爸中风了想要一辆轮椅，住厚街" in said and not any("进度" in t for t in said), said

    # a second application: the phone question, asked about the first case by its number
    r = await user.send_text("我们小区路灯坏了，在厚街")
    assert r.text.endswith(texts.ASK_PHONE), r.text
    r = await user.send_text(f"查询{first}")
    assert f"诉求{first}" in r.text and "镇街：厚街镇" in r.text and r.text.endswith(texts.ASK_PHONE), r.text
    r = await user.send_text("13800138000")
    assert "请核对您的申请" in r.text and "138****8000" in r.text, r.text
    r = await user.send_text("确认")
    second = CASE_NO.search(r.text).group(0)  # type: ignore[union-attr]
    r = await user.send_text("查询进度")
    assert first in r.text and second in r.text, r.text


@pytest.mark.parametrize("words", ["路灯坏了好久了，进度太慢", "查询", "厚街镇"])
async def test_words_that_are_not_only_a_progress_query_stay_part_of_the_application(
    keyword_system: System, words: str
) -> None:
    """At the phone question, a sentence that mentions progress among other things, a bare "查询" or a town is an
    answer to the application, never taken for a progress query."""
    user = keyword_system.user()
    await _to_phone_question(user)
    r = await user.send_text(words)
    assert not r.text.startswith((texts.NO_CASES, texts.NO_CASES_YET, "您最近的诉求")), r.text


# ------------------------------------------------------------------ phone numbers in words
@pytest.mark.parametrize(
    "said", ["我电话是一三八二六九五一二三四", "幺三八 二六九五 幺二三四", "1 3 8 2 6 9 5 1 2 3 4"]
)
async def test_a_phone_number_said_in_words_is_understood(keyword_system: System, said: str) -> None:
    user = keyword_system.user()
    await _to_phone_question(user)
    r = await user.send_text(said)
    assert "138****1234" in r.text and "未留" not in r.text, r.text
    await user.send_text("确认")
    [case] = await rows(keyword_system, Case)
    assert case.contact_phone == "13826951234"


# ------------------------------------------------------------------ fallbacks that help
@pytest.mark.parametrize("ask", ["人工", "我要找人", "打电话给我"])
async def test_asking_for_a_person_gives_a_number_and_books_a_call_back(
    keyword_system: System, ask: str
) -> None:
    user = keyword_system.user()
    r = await user.send_text(ask)
    assert "12345" in r.text and "回电" in r.text and "不在大莞家的办理范围" not in r.text, r.text
    r = await user.send_text("一三八二六九五一二三四")
    assert "138****1234" in r.text and "前会打给您" in r.text, r.text
    [callback] = await rows(keyword_system, CallBack)
    assert callback.phone == "13826951234" and callback.done_at is None
    assert callback.due_at > callback.created_at


async def test_a_person_for_a_resident_whose_town_and_phone_are_known(keyword_system: System) -> None:
    user = keyword_system.user()
    await _to_phone_question(user)
    await user.send_text("13812345678")
    await user.send_text("确认")
    r = await user.send_text("转人工")
    assert "138****5678" in r.text and "前会打给您" in r.text, r.text
    [callback] = await rows(keyword_system, CallBack)
    assert callback.town == "厚街镇"


@pytest.mark.parametrize("thanks", ["🙏", "👍", "谢谢", "谢谢你们 辛苦了"])
async def test_thanks_get_a_warm_word_back(keyword_system: System, thanks: str) -> None:
    r = await keyword_system.user().send_text(thanks)
    assert "不客气" in r.text, r.text
    assert "不在大莞家的办理范围" not in r.text and "还没有办结" not in r.text


async def test_i_cannot_type_is_told_to_send_a_voice_message(keyword_system: System) -> None:
    r = await keyword_system.user().send_text("我不会打字")
    assert "按住" in r.text and "说话" in r.text, r.text


async def test_a_digit_outside_the_menu_says_which_numbers_exist(keyword_system: System) -> None:
    user = keyword_system.user()
    r = await user.send_text("嗯嗯")
    assert "回复数字" in r.text
    r = await user.send_text("9")
    assert "只有1到6" in r.text, r.text
    r = await user.send_text("3")
    assert "还没有提交过" in r.text, r.text  # the menu stayed open


@pytest.mark.parametrize("digit", ["1", "3", " 5 ", "1。"])
async def test_a_digit_with_nothing_to_rate_opens_the_menu_and_keeps_no_score(
    keyword_system: System, digit: str
) -> None:
    """ "回复1申请" from a broadcast, or an old menu remembered: a digit from a resident with no finished case is a
    choice, not a rating (it was kept as a score of 1, with "谢谢您的反馈" and nothing forwarded)."""
    user = keyword_system.user()
    r = await user.send_text(digit)
    assert "请回复数字选择" in r.text and "1 申请微心愿" in r.text and "只有1到6" not in r.text, r.text
    assert "反馈" not in r.text and "评价" not in r.text
    assert await rows(keyword_system, Feedback) == []
    r = await user.send_text("1")  # now the menu's first entry: a wish, starting with the privacy notice
    assert "同意" in r.text and "登记" in r.text, r.text
    r = await user.send_text("7")  # inside a wish's questions a digit is an answer, not a menu choice
    assert await rows(keyword_system, Feedback) == []


async def test_a_digit_after_a_finished_case_rates_it_and_words_rate_without_a_case(
    keyword_system: System,
) -> None:
    user = keyword_system.user()
    r = await user.send_text("3分")  # a score in words, no case yet: kept as feedback on none
    assert "反馈" in r.text, r.text
    case = await _filed_and_moved_to(keyword_system, user, "completed")
    r = await user.send_text("5")
    assert "谢谢您的评价" in r.text, r.text
    scored = sorted((f.score, f.case_id) for f in await rows(keyword_system, Feedback))
    assert scored == [(3, None), (5, case.id)]


@pytest.mark.parametrize(
    ("asked", "need", "kind"),
    [
        ("我想申请微心愿", "家里老人需要一台助听器，住厚街", "微心愿"),
        ("申请微心愿", "我爸中风了想要一辆轮椅，住厚街", "微心愿"),
        ("我想登记一个微心愿", "孙女读书缺个书包，住厚街", "微心愿"),
        ("我想报个微实事", "我们小区门口的路灯坏了，在厚街", "微实事"),
        ("想提一个微实事", "村口的下水道堵了，在厚街", "微实事"),
    ],
)
async def test_naming_the_service_starts_that_request(
    keyword_system: System, asked: str, need: str, kind: str
) -> None:
    """The programme's own words are a request for it, whatever the model reads ("我想登记一个微心愿" was taken
    for an offer of help, "我想申请微心愿" was not understood, "申请微心愿" got the programme's description)."""
    user = keyword_system.user()
    r = await user.send_text(asked)
    assert "同意" in r.text and "登记" in r.text, r.text
    r = await user.send_text("同意")
    assert "具体需要什么" in r.text, r.text
    r = await user.send_text(need)
    assert "电话" in r.text, r.text
    r = await user.send_text("不用")
    assert f"类型：{kind}" in r.text and "厚街镇" in r.text, r.text


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("我想认领一个微心愿", "爱心"),
        ("微心愿怎么申请", "微心愿：个人或家庭的小困难"),
        ("我不想申请微心愿了", ""),
    ],
)
async def test_the_service_named_in_an_offer_a_question_or_a_refusal_is_no_request(
    keyword_system: System, text: str, said: str
) -> None:
    r = await keyword_system.user().send_text(text)
    assert "登记前先跟您说明" not in r.text and said in r.text, r.text
    assert await rows(keyword_system, Case) == []


async def test_every_question_that_asks_for_words_says_voice_works(keyword_system: System) -> None:
    user = keyword_system.user()
    await user.send_text("我想申请微心愿")
    r = await user.send_text("同意")
    assert "具体需要什么" in r.text and "语音" in r.text, r.text
    r = await user.send_text("家里老人需要一台助听器")
    assert "镇街" in r.text and "语音" in r.text, r.text
    r = await user.send_text("厚街")
    assert "电话" in r.text and "说出来" in r.text, r.text


# ------------------------------------------------------------------ links and words residents read
async def test_progress_has_a_short_link_and_says_done_for_a_closed_case(keyword_system: System) -> None:
    user = keyword_system.user()
    case_no = (await _filed_and_moved_to(keyword_system, user, "closed")).case_no
    r = await user.send_text("查询进度")
    assert re.search(r'<a href="http[^"]+">点这里查看</a>', r.text), r.text
    visible = re.sub(r"<a [^>]*>", "", r.text)
    assert not re.search(r"[A-Za-z0-9_\-.]{40,}", visible), r.text  # no raw token in what the resident reads
    assert "已办结" in r.text and "已归档" not in r.text
    r = await user.send_text(case_no)
    assert "已办结" in r.text and "已归档" not in r.text, r.text
    [resident] = await rows(keyword_system, Resident, Resident.openid == user.openid)
    link = re.search(r'href="([^"]+)"', (await user.send_text("查询进度")).text).group(1)  # type: ignore[union-attr]
    async with keyword_system.http.get(link) as page:
        body = await page.text()
    assert page.status == 200 and "已办结" in body and "已归档" not in body and "轮椅 · 给父亲" in body
    assert resident.id is not None


# ------------------------------------------------------------------ the hotline binding code
async def _hotline_case(system: System) -> tuple[str, str]:
    from bot.cases.lifecycle import Actor, StaffCaseInput, create_staff_case
    from bot.db import transaction
    from bot.models import Staff, utcnow

    async with transaction(system.app[keys.SESSIONS]) as db:
        staff = Staff(username="hj-bind", role="town_staff", town="厚街镇", password_hash="x")
        db.add(staff)
        await db.flush()
        case = await create_staff_case(
            db,
            actor=Actor.of_staff(staff),
            data=StaffCaseInput(
                kind="micro_project", description="村口路灯不亮", town="厚街镇", channel="hotline_12345"
            ),
            now=utcnow(),
        )
        assert case.bind_code
        return case.bind_code, case.case_no


@pytest.mark.parametrize("typed", ["{code}", " {code}。", "{lower}"])
async def test_the_bare_binding_code_binds_with_one_confirmation(keyword_system: System, typed: str) -> None:
    from bot.models import Outbox

    code, case_no = await _hotline_case(keyword_system)
    user = keyword_system.user()
    r = await user.send_text(typed.format(code=code, lower=code.lower()))
    assert "绑定成功" in r.text and case_no in r.text, r.text
    assert await rows(keyword_system, Outbox, Outbox.openid == user.openid) == []  # no second confirmation
    [case] = await rows(keyword_system, Case, Case.case_no == case_no)
    assert case.resident_id is not None and case.bind_code is None


# ------------------------------------------------------------------ the call-back request in the staff view
async def test_a_call_back_request_is_on_the_town_staff_queue_until_called(keyword_system: System) -> None:
    import aiohttp

    from bot.db import transaction
    from tests.factories import PASSWORD, mk_staff
    from tests.helpers import login

    user = keyword_system.user()
    await _to_phone_question(user)  # a draft in 厚街
    await user.send_text("13812345678")
    await user.send_text("确认")
    r = await user.send_text("打电话给我")
    assert "前会打给您" in r.text
    async with transaction(keyword_system.app[keys.SESSIONS]) as db:
        await mk_staff(db, "cb-houjie", town="厚街镇")
        await mk_staff(db, "cb-humen", town="虎门镇")

    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=keyword_system.bot_url, cookie_jar=jar) as other:
        await login(other, "cb-humen", PASSWORD)
        assert (
            'id="calls-due"' not in await (await other.get("/staff/cases")).text()
        )  # another town's request
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=keyword_system.bot_url, cookie_jar=jar) as staff:
        await login(staff, "cb-houjie", PASSWORD)
        queue = await (await staff.get("/staff/cases")).text()
        assert 'id="calls-due"' in queue and "电话待办 <b>1</b>" in queue, queue[:2000]
        assert "居民要求回电 1" in queue
        page = await (await staff.get("/staff/calls")).text()
        assert "138****5678" in page and "13812345678" not in page
        [callback] = await rows(keyword_system, CallBack)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        resp = await staff.post(f"/staff/callbacks/{callback.id}/phone", data={"csrf_token": token})
        assert resp.status == 200 and "13812345678" in await resp.text()  # the audited reveal
        assert str(resp.url).endswith("/staff/calls")  # back on the page: a reload shows nothing new
        assert "13812345678" not in await (await staff.get("/staff/calls")).text()  # shown once
        resp = await staff.post(f"/staff/callbacks/{callback.id}/done", data={"csrf_token": token})
        assert resp.status == 200 and "没有待打的电话" in await resp.text()
        queue = await (await staff.get("/staff/cases")).text()
        assert 'id="calls-due"' not in queue
    [callback] = await rows(keyword_system, CallBack)
    assert callback.done_at is not None and callback.done_by_id is not None


async def test_withdrawing_before_consent_keeps_none_of_the_words(keyword_system: System) -> None:
    from bot.models import InboundMessage

    user = keyword_system.user()
    r = await user.send_text("我老公截肢了想申请一辆轮椅 住在长安")
    assert "同意" in r.text
    r = await user.send_text("算了")
    assert "已经取消" in r.text, r.text
    kept = [
        m.text or "" for m in await rows(keyword_system, InboundMessage, InboundMessage.openid == user.openid)
    ]
    assert not any("截肢" in t for t in kept), kept


async def test_a_case_past_the_days_ten_thousandth_is_found_by_its_whole_number(
    keyword_system: System,
) -> None:
    """A day's serial grows past four digits (MS…-10000): the resident's query finds that case, not case 1000 and
    not "which case?"."""
    from bot.db import transaction

    user = keyword_system.user()
    await _to_phone_question(user, "我哋村口路灯坏咗好耐 喺厚街")
    await user.send_text("不用")
    first = CASE_NO.search((await user.send_text("确认")).text).group(0)  # type: ignore[union-attr]
    day = first[2:10]
    async with transaction(keyword_system.app[keys.SESSIONS]) as db:
        (await db.get(CaseSeq, day)).last = 9999  # type: ignore[union-attr]
    await user.send_text("我妈想要一辆轮椅 住厚街")
    await user.send_text("不用")
    r = await user.send_text("确认")
    second = CASE_NO.search(r.text).group(0)  # type: ignore[union-attr]
    assert second == f"MS{day}-10000", r.text
    r = await user.send_text(f"查询{second.lower()}")
    assert second in r.text and "轮椅" in r.text and first not in r.text and "路灯" not in r.text, r.text
