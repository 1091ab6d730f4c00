"""Reaching a person and other small helps: "人工" / "打电话给我" (the town's office line in working hours and a
call-back request that staff answer before a deadline), "我不会打字" (send a voice message), "算了" with nothing
in progress."""

from __future__ import annotations

import re

from sqlmodel import col, select

from bot.conversation.callbacks import request_callback
from bot.conversation.dialogue import texts
from bot.conversation.dialogue.turn import Turn
from bot.deadlines.waking import waking_of
from bot.models import Case
from reference.offices import office_for
from reference.privacy import mask_phone, normalize_phone

STATES = frozenset({"callback_phone"})
PERSON = re.compile(
    r"人工|真人|客服|找人|找个人|找工作人员|找你们的人|找负责人|有冇人|同人讲|跟人讲|跟人说|"
    r"打(个|一个)?电话(给|畀|俾)我|(给|畀|俾)我打(个|一个)?电话|回(个)?电话|给我回电|回电|叫人(打|联系|来)|call我",
    re.IGNORECASE,
)
NO_TYPING = re.compile(
    r"不会打字|唔识打字|打唔到字|打不了字|打字(好|很|太)?慢|不识字|唔识字|不会写字|不认识字|看不清字|眼花|"
    r"不会用手机打字|打字好难|打字很难"
)
NOTHING_MORE = re.compile(
    r"^(算了|算啦|罢了|不用了|不要了|没事了|冇事了|没事|冇事|唔使了|不弄了|不办了|不申请了)[吧啦了呀喇。.!！]*$"
)
NO = re.compile(r"不用|不要|不方便|没有|冇|唔使|算了")


async def person_or_voice(turn: Turn) -> str | None:
    """The answer to "I want a person" or "I can't type", in any state (a draft in progress stays as it is)."""
    text = turn.text
    if NO_TYPING.search(text) and len(text) <= 20:
        return texts.VOICE_HINT
    if not PERSON.search(text) or len(text) > 30:
        return None
    if turn.conv.state != "idle" and normalize_phone(text):
        return None  # "有事回电话13800…" in a draft: a phone for the draft, not a request for a person
    town = await _town(turn)
    office = office_for(town, overrides=turn.settings.town_office_phones, hours=turn.settings.office_hours)
    line = texts.OFFICE_LINE.format(label=office.label, phone=office.phone, hours=office.hours)
    phone = normalize_phone(text) or _draft_phone(turn) or turn.resident.phone
    if phone:
        due = await _callback(turn, phone=phone, town=town)
        return f"{line}\n{texts.CALLBACK_BOOKED.format(due=due, phone=mask_phone(phone))}"
    if turn.conv.state != "idle":  # a draft or another question is open: keep it, its phone question comes
        return f"{line}\n{texts.CALLBACK_IN_DRAFT}"
    turn.set_state("callback_phone", town=town, note=turn.raw_text[:200])
    return f"{line}\n{texts.CALLBACK_ASK_PHONE}"


async def continue_flow(turn: Turn) -> str | None:
    """The phone number for a call-back; anything else leaves this question (None: handle it as a new message)."""
    text = turn.text
    phone = normalize_phone(text)
    town = turn.conv.data.get("town")
    if phone:
        turn.set_state("idle")
        due = await _callback(turn, phone=phone, town=town)
        return texts.CALLBACK_BOOKED.format(due=due, phone=mask_phone(phone))
    turn.set_state("idle")
    if NO.search(text) and len(text) <= 8:
        return texts.CALLBACK_DECLINED
    return None


async def nothing_more(turn: Turn) -> str:
    """ "算了" with nothing in progress: a friendly word, and how to withdraw a case if that was meant."""
    open_case = (
        await turn.session.exec(
            select(Case.id)
            .where(col(Case.resident_id) == turn.resident.id, col(Case.status).in_(_OPEN))
            .limit(1)
        )
    ).first()
    return texts.NOTHING_MORE + (texts.NOTHING_MORE_CASE if open_case is not None else "")


_OPEN = ("submitted", "verified", "accepted", "claimed", "matching", "dispatched", "in_progress", "reopened")


def _draft_phone(turn: Turn) -> str | None:
    draft = turn.conv.data.get("draft") or {}
    return draft.get("phone") or None


async def _town(turn: Turn) -> str | None:
    draft = turn.conv.data.get("draft") or {}
    town = draft.get("town") or turn.conv.data.get("town") or turn.conv.data.get("last_town")
    if town:
        return str(town)
    latest = (
        await turn.session.exec(
            select(Case.town)
            .where(col(Case.resident_id) == turn.resident.id)
            .order_by(col(Case.created_at).desc())
            .limit(1)
        )
    ).first()
    return str(latest) if latest else None


async def _callback(turn: Turn, *, phone: str, town: str | None) -> str:
    row = await request_callback(
        turn.session,
        resident_id=turn.resident.id,
        phone=phone,
        town=town,
        note=turn.raw_text,
        now=turn.now,
        waking=waking_of(turn.settings),
    )
    if not turn.resident.phone:
        turn.resident.phone = phone
    return texts.when(row.due_at)
