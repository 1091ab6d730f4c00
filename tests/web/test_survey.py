"""The satisfaction survey: started on completion, answered by digit, by words, by page; reminder, timeout,
low-score alert, opt-out. SQLite always, PostgreSQL when reachable (the shared ``sessions`` fixture)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot import db
from bot.cases.lifecycle import Actor, transition
from bot.cases.numbering import create_case
from bot.cases.survey import answer_from_chat, parse_score
from bot.cases.sweeps import run_sweeps
from bot.deadlines.workdays import CHINA
from bot.delivery.dispatcher import DeliveryConfig, message_text, resolve_link
from bot.models import Case, CaseEvent, Offer, Outbox, Resident, Resource, Staff, Survey

T0 = datetime(2025, 6, 9, 10, tzinfo=CHINA)


async def _setup(sessions: Any, *, opt_out: bool = False, donor: bool = True) -> dict[str, Any]:
    """A micro-wish completed at T0 by a donor's accepted offer."""
    async with db.transaction(sessions) as s:
        worker = Staff(username="w", role="town_staff", town="厚街镇", openid="o-worker")
        boss = Staff(username="b", role="town_supervisor", town="厚街镇", openid="o-boss")
        other = Staff(username="x", role="town_supervisor", town="虎门镇", openid="o-x")
        res = Resident(openid="o-res", survey_opt_out=opt_out)
        for p in (worker, boss, other, res):
            s.add(p)
        await s.flush()
        case = await create_case(
            s, kind="micro_wish", description="轮椅", town="厚街镇", resident_id=res.id, now=T0
        )
        resource = Resource(
            key="r1", kind="enterprise", name="爱心企业", home_town="厚街镇", openid="o-donor"
        )
        s.add(resource)
        await s.flush()
        if donor:
            s.add(Offer(case_id=case.id, resource_id=resource.id, status="accepted", answered_at=T0))  # type: ignore[arg-type]
    actor = Actor.of_staff(worker)
    for action, note in [
        ("verify", None),
        ("accept", None),
        ("claim", None),
        ("match", None),
        ("start", None),
        ("complete", "轮椅已送到家"),
    ]:
        async with db.transaction(sessions) as s:
            c = await s.get(Case, case.id)
            await transition(s, case=c, action=action, actor=actor, note=note, now=T0)  # type: ignore[arg-type]
    return {"case_id": case.id, "resident_id": res.id, "resource_id": resource.id}


async def _get(sessions: Any, model: Any, id_: int) -> Any:
    async with sessions() as s:
        return await s.get(model, id_)


async def _survey(sessions: Any, case_id: int) -> Survey | None:
    async with sessions() as s:
        return (await s.exec(select(Survey).where(Survey.case_id == case_id))).first()


async def _outbox(sessions: Any, kind: str) -> list[Outbox]:
    async with sessions() as s:
        return list((await s.exec(select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id))).all())


async def _chat(
    sessions: Any,
    ctx: dict[str, Any],
    text: str,
    *,
    score: int | None = None,
    now: datetime = T0 + timedelta(hours=2),
    intent: str | None = None,
) -> str | None:
    async with db.transaction(sessions) as s:
        resident = await s.get(Resident, ctx["resident_id"])
        return await answer_from_chat(s, resident=resident, text=text, score=score, now=now, intent=intent)


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("5", 5),
        ("５分", 5),
        ("五星", 5),
        ("1", 1),
        ("3分", 3),
        ("很满意", 5),
        ("非常满意！", 5),
        ("满意", 4),
        ("还行吧", 3),
        ("不太满意", 2),
        ("不满意", 2),
        ("很不满意", 1),
        ("太差了", 1),
        ("6", None),
        ("0", None),
        ("我还想要一个助听器", None),
        ("12", None),
        ("", None),
    ],
)
def test_parse_score(text: str, score: int | None) -> None:
    assert parse_score(text) == score


async def test_completion_starts_the_survey_with_a_signed_link(sessions: Any) -> None:
    ctx = await _setup(sessions)
    survey = await _survey(sessions, ctx["case_id"])
    assert survey is not None and survey.status == "sent"
    assert survey.deadline == T0 + timedelta(days=3)
    (msg,) = await _outbox(sessions, "survey")
    assert msg.openid == "o-res" and "回复数字" in msg.text
    cfg = DeliveryConfig(base_url="https://dgj.example", link_secret="k" * 40)
    text = message_text(msg, config=cfg, now=T0)
    link = resolve_link(msg.link, config=cfg, now=T0)
    assert link and link.startswith("https://dgj.example/survey/survey.") and link in text


async def test_chat_digit_then_comment_closes_case_and_rates_donor(sessions: Any) -> None:
    ctx = await _setup(sessions)
    reply = await _chat(sessions, ctx, "5")
    assert reply and "5分" in reply
    survey = await _survey(sessions, ctx["case_id"])
    assert survey and survey.status == "answered" and survey.score == 5 and survey.via == "chat"
    case = await _get(sessions, Case, ctx["case_id"])
    assert case.status == "closed" and case.flag is None
    resource = await _get(sessions, Resource, ctx["resource_id"])
    assert (resource.rating_sum, resource.rating_count) == (5, 1)
    # the next message is the comment
    assert await _chat(sessions, ctx, "志愿者很热心，谢谢你们") == "您的意见已记下，谢谢您！"
    assert (await _survey(sessions, ctx["case_id"])).comment == "志愿者很热心，谢谢你们"  # type: ignore[union-attr]
    # and after that, chat is chat again
    assert await _chat(sessions, ctx, "你好") is None
    assert await _outbox(sessions, "alert") == []


async def test_chat_words_via_the_nlu_score(sessions: Any) -> None:
    ctx = await _setup(sessions)
    assert await _chat(sessions, ctx, "我想问下别的事", intent="ask_help") is None  # not an answer
    assert (await _survey(sessions, ctx["case_id"])).status == "sent"  # type: ignore[union-attr]
    reply = await _chat(sessions, ctx, "挺好的，师傅人不错", score=4)  # the NLU read a 4
    assert reply and "4分" in reply
    assert (await _survey(sessions, ctx["case_id"])).score == 4  # type: ignore[union-attr]


async def test_low_score_alerts_the_town_supervisor_and_flags_the_case(sessions: Any) -> None:
    ctx = await _setup(sessions)
    reply = await _chat(sessions, ctx, "很不满意")
    assert reply and "负责人会尽快联系您" in reply
    case = await _get(sessions, Case, ctx["case_id"])
    assert case.flag == "low_score"
    alerts = await _outbox(sessions, "alert")
    assert [a.openid for a in alerts] == ["o-boss"] and case.case_no in alerts[0].text
    async with sessions() as s:
        notes = (
            await s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == "note"))
        ).all()
    assert any("请回访" in n.note for n in notes)


async def test_comment_saying_help_never_arrived_alerts(sessions: Any) -> None:
    ctx = await _setup(sessions)
    await _chat(sessions, ctx, "4")
    assert await _outbox(sessions, "alert") == []
    reply = await _chat(sessions, ctx, "其实轮椅到现在都没收到")
    assert reply and "还没有送到" in reply
    assert [a.openid for a in await _outbox(sessions, "alert")] == ["o-boss"]
    assert (await _get(sessions, Case, ctx["case_id"])).flag == "low_score"


async def test_new_request_after_score_is_not_taken_as_comment(sessions: Any) -> None:
    ctx = await _setup(sessions)
    await _chat(sessions, ctx, "5")
    assert await _chat(sessions, ctx, "我家门口路灯坏了", intent="micro_project") is None


async def test_reminder_once_then_timeout_closes_the_case(sessions: Any) -> None:
    ctx = await _setup(sessions)
    for hours in (47, 49, 50, 60):  # the reminder is due 24 h before the 72 h deadline, once
        await run_sweeps(sessions=sessions, now=T0 + timedelta(hours=hours))
    msgs = await _outbox(sessions, "survey")
    assert len(msgs) == 2 and "还差您一个评价" in msgs[1].text
    assert (await _get(sessions, Case, ctx["case_id"])).status == "completed"
    for _ in range(2):
        await run_sweeps(sessions=sessions, now=T0 + timedelta(hours=72))
    survey = await _survey(sessions, ctx["case_id"])
    assert survey and survey.status == "expired"
    case = await _get(sessions, Case, ctx["case_id"])
    assert case.status == "closed"
    assert await _chat(sessions, ctx, "5", now=T0 + timedelta(hours=73)) is None  # too late: normal chat


async def test_opted_out_resident_is_not_surveyed(sessions: Any) -> None:
    ctx = await _setup(sessions, opt_out=True)
    assert await _survey(sessions, ctx["case_id"]) is None
    assert await _outbox(sessions, "survey") == []
    assert await _chat(sessions, ctx, "5") is None
    assert (await _get(sessions, Case, ctx["case_id"])).status == "completed"


async def test_reopen_and_complete_again_surveys_again(sessions: Any) -> None:
    ctx = await _setup(sessions, donor=False)
    await _chat(sessions, ctx, "2")
    later = T0 + timedelta(days=1)
    async with db.transaction(sessions) as s:
        boss = Actor.of_staff((await s.exec(select(Staff).where(Staff.username == "b"))).one())
        worker = Actor.of_staff((await s.exec(select(Staff).where(Staff.username == "w"))).one())
        c = await s.get(Case, ctx["case_id"])
        assert c is not None
        await transition(s, case=c, action="reopen", actor=boss, note="回访核实", now=later)
        assert c.stage_deadline is not None  # the reopened stage has its own clock
        await transition(s, case=c, action="resume", actor=worker, note=None, now=later)
        await transition(s, case=c, action="complete", actor=worker, note="已补送", now=later)
    survey = await _survey(sessions, ctx["case_id"])
    assert survey and survey.status == "sent" and survey.score is None
    assert survey.deadline == later + timedelta(days=3)
    assert len(await _outbox(sessions, "survey")) == 2
    assert (await _chat(sessions, ctx, "5", now=later + timedelta(hours=1))) is not None
    assert (await _get(sessions, Case, ctx["case_id"])).status == "closed"


# ------------------------------------------------------------------------------------- the page
async def test_survey_page_get_and_post_with_csrf(aiohttp_client: Any, db_url: str, tmp_path: Path) -> None:
    from bot.app import create_app
    from bot.delivery.links import sign_link
    from tests.helpers import make_settings

    settings = make_settings(db_url, tmp_path)
    app = create_app(settings, run_migrations=False, clock=lambda: T0 + timedelta(hours=3))
    client = await aiohttp_client(app)
    from bot import keys

    sessions = app[keys.SESSIONS]
    ctx = await _setup(sessions)
    survey = await _survey(sessions, ctx["case_id"])
    token = sign_link(settings.link_secret, "survey", survey.id, now=T0.timestamp())  # type: ignore[union-attr]

    resp = await client.get(f"/survey/{token}")
    assert resp.status == 200
    page = await resp.text()
    assert "这次服务您满意吗" in page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]

    # forged and missing CSRF: refused, nothing changes
    assert (await client.post(f"/survey/{token}", data={"score": "1", "csrf_token": "forged"})).status == 403
    assert (await client.post(f"/survey/{token}", data={"score": "1"})).status == 403
    # no score: the error goes back into the page
    resp = await client.post(f"/survey/{token}", data={"csrf_token": csrf, "comment": "嗯"})
    assert resp.status == 400 and "请先选择一个分数" in await resp.text()
    assert (await _survey(sessions, ctx["case_id"])).status == "sent"  # type: ignore[union-attr]

    resp = await client.post(
        f"/survey/{token}", data={"csrf_token": csrf, "score": "2", "comment": "等了好久"}
    )
    assert resp.status == 200 and "您给了" in await resp.text()
    survey = await _survey(sessions, ctx["case_id"])
    assert survey and survey.score == 2 and survey.via == "page" and survey.comment == "等了好久"
    assert (await _get(sessions, Case, ctx["case_id"])).status == "closed"
    assert [a.openid for a in await _outbox(sessions, "alert")] == ["o-boss"]
    # a second submission changes nothing
    await client.post(f"/survey/{token}", data={"csrf_token": csrf, "score": "5"})
    assert (await _survey(sessions, ctx["case_id"])).score == 2  # type: ignore[union-attr]
    # a forged or another kind's token is refused
    assert (await client.get(f"/survey/{token[:-2]}xx")).status == 403
    other = sign_link(settings.link_secret, "my_cases", survey.id, now=T0.timestamp())
    assert (await client.get(f"/survey/{other}")).status == 403
