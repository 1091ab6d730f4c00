"""Dispatch of one turn to the router for its message type, conversation state and intent.

Routers: drafts (creating a case), cases (progress, cancel, bind), feedback (surveys and ratings), and the
small ones here (events, help, volunteering). Replies are plain text; the webhook renders them."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlmodel import col

from bot.cases.actors import Actor
from bot.cases.communities import record_scan
from bot.cases.survey import COMMENT_WINDOW
from bot.cases.timeline import record_event
from bot.conversation.dialogue import cases as case_router
from bot.conversation.dialogue import drafts, feedback, mydata, photos, texts
from bot.conversation.dialogue import help as help_router
from bot.conversation.dialogue.turn import Awaiting, ConversationState, Turn
from bot.conversation.nlu.fillers import is_greeting_only, is_thanks_only
from bot.driver import insert_at_commit, on_driver, update_at_commit
from bot.models import Case, Conversation, Survey
from bot.pool import leads, volunteer_chat, wall
from bot.pool.bindqr import bind_by_scan
from bot.pool.wallchat import wall_chat
from bot.states import DONE, SurveyStatus
from reference import towns

log = logging.getLogger(__name__)
DIGIT = re.compile(r"^\s*([1-9])\s*[。.、]?\s*$")
NO_SURVEY = re.compile(r"(不要|别|不用|唔使|不想)(再)?(给我)?(做|发|搞)?.{0,3}(回访|满意度|调查|问卷)")


async def respond(turn: Turn) -> str | None:
    session = turn.session
    if turn.read_conv is not None:  # read with the resident
        conv = turn.read_conv[0]
    else:
        row = (await session.exec(_READ_CONVERSATION, params={"rid": turn.resident.id})).first()  # type: ignore[call-overload]
        conv = ConversationState(row[0], row[1], row[2] or {}, row[3]) if row is not None else None
    if conv is None:
        conv = ConversationState(None, "idle", {}, None)
    turn.conv = conv
    before = (conv.state, dict(conv.data))

    prefix = ""
    idle = timedelta(minutes=turn.settings.draft_idle_minutes)
    if conv.state != "idle" and conv.updated_at and turn.now - conv.updated_at > idle:
        if conv.state in drafts.DRAFT_STATES:
            prefix = texts.DRAFT_EXPIRED + "\n"
        turn.set_state("idle")

    reply = await _dispatch(turn)
    await _save(turn, conv, changed=(conv.state, dict(conv.data)) != before)
    if reply is None:
        return None
    return prefix + reply


async def _save(turn: Turn, conv: ConversationState, *, changed: bool) -> None:
    """``updated_at`` only times out a conversation that waits for something (a draft, a menu, a question): an idle
    conversation that stays as it was is not written (a greeting or a progress query costs no UPDATE), and an idle
    one with nothing in it is not created."""
    if conv.state == "idle" and not changed:
        return
    conv.updated_at = turn.now
    values = {"state": conv.state, "data": conv.data, "updated_at": turn.now}
    # on PostgreSQL the write goes with the COMMIT, in its round trip (nothing in the turn reads the conversation
    # after this); a new row's id is then not known, and not needed
    if conv.id is not None:
        if update_at_commit(turn.session, _CONVERSATIONS, conv.id, values):
            return
        await turn.session.exec(
            _UPDATE_CONVERSATION, params={"cid": conv.id, **{f"new_{k}": v for k, v in values.items()}}
        )
    elif conv.state != "idle" or conv.data:
        if insert_at_commit(turn.session, _CONVERSATIONS, {"resident_id": turn.resident.id, **values}):
            return
        inserted = await turn.session.exec(
            _INSERT_CONVERSATION, params={"resident_id": turn.resident.id, **values}
        )
        conv.id = inserted.scalar_one()


_CONVERSATIONS = Conversation.__table__  # type: ignore[attr-defined]
_READ_CONVERSATION = on_driver(
    select(
        _CONVERSATIONS.c.id, _CONVERSATIONS.c.state, _CONVERSATIONS.c.data, _CONVERSATIONS.c.updated_at
    ).where(_CONVERSATIONS.c.resident_id == bindparam("rid"))
)
_INSERT_CONVERSATION = on_driver(_CONVERSATIONS.insert().returning(_CONVERSATIONS.c.id))
_UPDATE_CONVERSATION = on_driver(
    _CONVERSATIONS.update()
    .where(_CONVERSATIONS.c.id == bindparam("cid"))
    .values(state=bindparam("new_state"), data=bindparam("new_data"), updated_at=bindparam("new_updated_at"))
)


async def _dispatch(turn: Turn) -> str | None:
    kind = turn.delivery.msg_type
    if kind == "event":
        return await on_event(turn)
    if kind == "location":
        return await on_location(turn)
    if kind == "image":
        return await on_image(turn)
    if kind not in {"text", "voice"}:
        log.info("unsupported message type %s", kind)
        return texts.UNSUPPORTED
    if not turn.text:
        return texts.VOICE_EMPTY if kind == "voice" else texts.menu("您好，请告诉我需要什么帮助。")
    return await on_text(turn)


async def on_text(turn: Turn) -> str:
    state = turn.conv.state
    text = turn.text

    about_my_data = await mydata.route(turn)  # "我的信息" / "删除我的信息" and its confirmation, in any state
    if about_my_data is not None:
        return about_my_data

    if state in photos.STATES:  # a volunteer picking the task a photo belongs to
        chosen = await photos.choose(turn)
        if chosen is not None:
            return chosen
        state = turn.conv.state

    if state == "idle":
        # volunteers of the resource pool answer offers ("接受" / "没空"), ask for their tasks, bind their WeChat
        volunteer_reply = await volunteer_chat(
            turn.session, openid=turn.resident.openid, text=text, now=turn.now, settings=turn.settings
        )
        if volunteer_reply is not None:
            return volunteer_reply
        # 圆梦墙: "看看心愿" lists open wishes near the sender; a bound volunteer claims one with "认领 <编号>"
        wall_reply = await wall_chat(
            turn.session, openid=turn.resident.openid, text=text, now=turn.now, settings=turn.settings
        )
        if wall_reply is not None:
            return wall_reply

    # a few needs are answered the same way whatever the state: a person to talk to, "I can't type"
    if state not in help_router.STATES:
        helped = await help_router.person_or_voice(turn)
        if helped is not None:
            return helped

    if state == "menu":
        m = DIGIT.match(text)
        if m and 1 <= int(m.group(1)) <= len(texts.MENU_CHOICES):
            chosen = texts.MENU_CHOICES[int(m.group(1)) - 1][0]
            pending = turn.conv.data.get("pending_text")
            turn.set_state("idle")
            return await route_intent(turn, chosen, text=pending or "")
        if m:  # "9": only the listed numbers exist; the menu stays open
            return texts.menu(texts.MENU_RANGE)
        turn.set_state("idle")  # not a choice: treat it as a new message

    if state in drafts.DRAFT_STATES:
        return await drafts.continue_draft(turn)
    if state in case_router.STATES:
        return await case_router.continue_flow(turn)
    if state in help_router.STATES:
        helped = await help_router.continue_flow(turn)
        if helped is not None:
            return helped

    if help_router.NOTHING_MORE.match(text):  # "算了" with nothing in progress
        return await help_router.nothing_more(turn)
    if is_greeting_only(turn.raw_text):
        return texts.GREETING

    if NO_SURVEY.search(text):
        turn.resident.survey_opt_out = True
        return "好的，以后办结时不再请您做满意度回访。想恢复时回复“恢复回访”。"
    if "恢复回访" in text:
        turn.resident.survey_opt_out = False
        return "好的，以后办结时会请您评价一下服务。"

    # The rare states (staff asked this resident a question, a survey waits for a score or a comment) in one read.
    rare = await _awaiting(turn)
    if rare.asked:  # a resident answering a question staff asked about one of their cases
        answered = await case_router.answer_staff_question(turn)
        if answered is not None:
            return answered
    bound = await case_router.bind_by_code(turn)
    if bound is not None:
        return bound
    if rare.surveyed:
        survey_reply = await feedback.survey_answer(turn)
        if survey_reply is not None:
            return survey_reply
    if is_thanks_only(turn.raw_text):  # 🙏 / 👍 / "谢谢": a warm word back, nothing recorded
        return texts.THANKS_BACK

    intent = turn.intent
    if DIGIT.match(text) and intent != "rate_service":
        return _digit_outside_menu(turn, text)
    if intent is None:
        # an unclear message: offer the numbered menu, keep the text
        turn.set_state("menu", pending_text=text if len(text) >= 6 else None)
        note = texts.DEGRADED_NOTE if turn.degraded else ""
        return texts.menu() + note
    return await route_intent(turn, intent, text=text)


def _digit_outside_menu(turn: Turn, text: str) -> str:
    """A digit alone with no menu open and nothing to rate ("1" remembered from a broadcast or an old menu): the
    numbered menu, so that the next digit picks its entry; a number the menu lacks is told which numbers exist."""
    turn.set_state("menu", pending_text=None)
    m = DIGIT.match(text)
    listed = m is not None and int(m.group(1)) <= len(texts.MENU_CHOICES)
    return texts.menu(texts.MENU_ASK if listed else texts.MENU_RANGE)


async def _awaiting(turn: Turn) -> Awaiting:
    """The resident's rare states: whether staff wait for their answer on a case, whether a survey of theirs waits
    for a score (sent) or for the comment after a chat score (answered within the comment window, no comment yet),
    and whether they have a finished case — the cases in which `answer_staff_question`, `survey_answer` and a bare
    digit's rating have anything to look up. One statement instead of their reads on every free text, nearly
    always answering no; none when the caller read it with the resident (``Turn.read_awaiting``: on PostgreSQL,
    where a statement is a round trip). Kept on the turn for what the dialogue asks later."""
    if turn.read_awaiting is not None:
        return turn.read_awaiting
    row = (
        await turn.session.exec(  # type: ignore[call-overload]
            _AWAITING, params={"rid": turn.resident.id, "comment_since": turn.now - COMMENT_WINDOW}
        )
    ).one()
    turn.read_awaiting = Awaiting.of(row)
    return turn.read_awaiting


def awaiting(resident_id: Any, comment_since: Any) -> tuple[Any, Any, Any]:
    """The three EXISTS of ``_awaiting`` (``Awaiting``'s fields, in order) for the resident whose id is
    ``resident_id`` (a parameter, or the id column of a query that reads the resident: correlated)."""
    asked = (
        select(col(Case.id))
        .where(col(Case.resident_id) == resident_id, col(Case.awaiting_resident).is_(True))
        .exists()
    )
    surveyed = (
        select(col(Survey.id))
        .where(
            col(Survey.resident_id) == resident_id,
            or_(
                col(Survey.status) == SurveyStatus.SENT,
                and_(
                    col(Survey.status) == SurveyStatus.ANSWERED,
                    col(Survey.via) == "chat",
                    col(Survey.comment).is_(None),
                    col(Survey.answered_at) >= comment_since,
                ),
            ),
        )
        .exists()
    )
    finished = (
        select(col(Case.id))
        # each status its own comparison: an IN list is expanded when the statement runs, which the driver's
        # precompiled statement (``bot.driver.first_on_driver``) does not do
        .where(col(Case.resident_id) == resident_id, or_(*(col(Case.status) == status for status in DONE)))
        .exists()
    )
    return asked, surveyed, finished


# built once (building a statement costs more CPU than running it; it runs on most free texts)
_AWAITING = on_driver(select(*awaiting(bindparam("rid"), bindparam("comment_since"))))


async def route_intent(turn: Turn, intent: str, *, text: str) -> str:
    """`text` is what describes the need ('' when the resident only picked a menu entry)."""
    if intent in ("micro_wish", "micro_project"):
        return await drafts.start_draft(turn, kind=intent, text=text)
    if intent == "query_progress":
        return await case_router.query_progress(turn)
    if intent == "cancel_request":
        return await case_router.start_cancel(turn)
    if intent == "rate_service":
        rated = await feedback.rate_outside_survey(turn, bare_digit=DIGIT.match(text) is not None)
        return rated if rated is not None else _digit_outside_menu(turn, text)
    if intent == "offer_help":
        await leads.record_chat_lead(
            turn.session, openid=turn.resident.openid, text=turn.raw_text, now=turn.now
        )
        wall_lines = await wall.chat_wall_lines(turn.session, base_url=turn.settings.base_url, now=turn.now)
        return f"{texts.OFFER_HELP}\n{wall_lines}"
    if intent == "greet":
        return texts.GREETING
    if intent == "ask_help":
        return texts.GUIDE
    if intent in ("affirm", "deny"):
        # a bare "好的"/"不用" with nothing pending: offer the menu rather than guess
        turn.set_state("menu", pending_text=None)
        return texts.menu("好的。请问您需要什么帮助？")
    return texts.OUT_OF_SCOPE


# ---------------------------------------------------------------- events, location, image
#: the official account's menu (keys as created with /cgi-bin/menu/create)
MENU_KEYS = {
    "MENU_HELP": "ask_help",
    "MENU_PROGRESS": "query_progress",
    "MENU_VOLUNTEER": "offer_help",
    "MENU_WISH": "micro_wish",
    "MENU_PROJECT": "micro_project",
    "MENU_CANCEL": "cancel_request",
}


async def on_event(turn: Turn) -> str | None:
    event = turn.delivery.event or ""
    if event == "subscribe" or event == "scan":
        turn.resident.subscribed = True
        turn.resident.unsubscribed_at = None
        if (by_qr := await on_community_scan(turn)) is not None:
            return by_qr
        return texts.WELCOME if event == "subscribe" else "欢迎回来！" + texts.GUIDE
    if event == "unsubscribe":
        turn.resident.subscribed = False
        turn.resident.unsubscribed_at = turn.now
        turn.set_state("idle")
        return None
    if event == "click":
        key = str(turn.delivery.media.get("event_key") or turn.delivery.text or "").upper()
        intent = MENU_KEYS.get(key)
        if intent is None:
            log.info("unknown menu key %r", key)
            return texts.GUIDE
        if intent in ("micro_wish", "micro_project"):
            turn.set_state("idle")
            return await drafts.start_draft(turn, kind=intent, text="")
        return await route_intent(turn, intent, text="")
    if event == "location":
        lat, lon = turn.delivery.media.get("lat"), turn.delivery.media.get("lon")
        if lat is not None and lon is not None:
            turn.update(last_town=towns.nearest(float(lat), float(lon)).name)
        return None
    if event in ("view", "templatesendjobfinish", "view_miniprogram"):
        return None
    log.info("unhandled event %r", event)
    return None


async def on_community_scan(turn: Turn) -> str | None:
    """A community's QR code (scene ``c:<id>``, bot/cases/communities.py): the resident's next case belongs to
    that community and town; the greeting names it. A donor's one-time binding code (scene ``b:<code>``,
    bot/pool/bindqr.py) binds their WeChat. None for any other scene (the usual welcome follows)."""
    scene = turn.delivery.media.get("scene")
    bound = await bind_by_scan(turn.session, scene=scene, openid=turn.resident.openid, now=turn.now)
    if bound is not None:
        return bound
    community = await record_scan(turn.session, resident=turn.resident, scene=scene, now=turn.now)
    if community is None:
        return None
    turn.update(last_town=community.town, last_address=None)
    return (
        f"您好，欢迎来到民生大莞家！您扫描的是{community.town}{community.name}的二维码。\n"
        f"家里有困难、社区里有小问题，直接打字或发语音告诉我就行，我会登记到{community.name}，"
        "由工作人员跟进。回复“查询进度”可以看办理情况。"
    )


async def on_location(turn: Turn) -> str:
    media = turn.delivery.media
    try:
        town = towns.nearest(float(media["lat"]), float(media["lon"]))
    except (KeyError, TypeError, ValueError):
        return "没能读出这个位置，请直接告诉我您所在的镇街，打字或发语音都行。"
    label = str(media.get("label") or "")
    if turn.conv.state in drafts.DRAFT_STATES:
        return await drafts.set_location(turn, town=town.name, address=label)
    turn.update(last_town=town.name, last_address=label)
    return f"收到您的位置，在{town.name}附近。请说说需要什么帮助（打字或发语音都行），我来帮您登记。"


async def on_image(turn: Turn) -> str:
    url = str(turn.delivery.media.get("pic_url") or "")
    if turn.conv.state in drafts.DRAFT_STATES:
        images = [*turn.conv.data.get("images", []), url]
        msg_ids = [*turn.conv.data.get("msg_ids", []), turn.inbound.id]
        turn.update(images=images[-9:], msg_ids=msg_ids)
        return texts.IMAGE_DRAFT
    case = (
        await turn.session.exec(  # type: ignore[call-overload]
            select(Case)
            .where(col(Case.resident_id) == turn.resident.id, col(Case.status).notin_(case_router.FINISHED))
            .order_by(col(Case.created_at).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if case is None:
        return await photos.volunteer_photo(turn) or texts.IMAGE_NONE
    turn.inbound.case_id = case.id
    record_event(
        turn.session,
        case=case,
        kind="photo",
        actor=Actor("resident", turn.resident.id, None),
        at=turn.now,
        note="居民补充了照片",
        data={"url": url},
    )
    return texts.IMAGE_CASE.format(case_no=case.case_no)
