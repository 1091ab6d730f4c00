"""A resident's own cases: progress, cancelling, binding a hotline case, answering staff's questions."""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, literal_column, select
from sqlmodel import col

from bot.cases.lifecycle import (
    STATE_LABEL,
    BindError,
    bind_case,
    cancel_by_resident,
    my_cases_url,
    record_resident_answer,
)
from bot.cases.numbering import CHINA
from bot.cases.titles import case_title, resident_labels
from bot.conversation.dialogue import texts
from bot.conversation.dialogue.turn import Turn
from bot.conversation.nlu.normalize import find_case_no
from bot.driver import on_driver
from bot.models import Case

STATES = frozenset({"cancel_pick", "cancel_confirm"})
FINISHED = ("completed", "closed", "cancelled", "rejected", "merged")
CANCELLABLE = (
    "submitted",
    "verified",
    "accepted",
    "claimed",
    "matching",
    "dispatched",
    "in_progress",
    "reopened",
)
BIND = re.compile(r"(?:绑定|绑定码|bind)\s*[:：]?\s*([A-Za-z0-9]{6})\b", re.I)
# the bare code as staff print it ("居民在公众号发送此码即可"): 6 characters of the code alphabet, with a digit or
# in capitals (so an ordinary word typed in lower case is not taken for a code)
BARE_CODE = re.compile(r"^\s*([2-9A-HJ-NP-Za-hj-np-z]{6})\s*[。.]?\s*$")
AFFIRM = re.compile(r"^(确认|确定|是|是的|对|好|好的|取消吧|取消|要取消|嗯|系|OK|ok)")
DENY = re.compile(r"^(不|不要|不取消|算了不取消|先不|唔好|唔使)")


RESIDENT_STATE_LABEL = resident_labels(STATE_LABEL)


def _label(status: str) -> str:
    return RESIDENT_STATE_LABEL.get(status, status)


class MyCase(NamedTuple):
    """What the chat shows of one of the resident's cases (read on the driver: no ORM object)."""

    id: int
    case_no: str
    kind: str
    status: str
    town: str
    item: str | None
    quantity: int | None
    beneficiary: str | None
    description: str
    updated_at: datetime

    @property
    def title(self) -> str:
        return case_title(
            item=self.item, quantity=self.quantity, beneficiary=self.beneficiary, description=self.description
        )


_CASES = Case.__table__  # type: ignore[attr-defined]
_SHOWN = select(*(_CASES.c[name] for name in MyCase._fields))
_NEWEST_FIRST = _CASES.c.created_at.desc()
# the resident's cases as the chat lists them, built once and run on the driver in the webhook's units of work
# (a progress query is a common message: through the ORM it made the session on PostgreSQL's held connections)
_RECENT = on_driver(_SHOWN.where(_CASES.c.resident_id == bindparam("rid")).order_by(_NEWEST_FIRST).limit(5))
_BY_NUMBER = on_driver(
    _SHOWN.where(_CASES.c.case_no == bindparam("case_no"), _CASES.c.resident_id == bindparam("rid"))
)
# the states a resident may cancel from, written into the SQL (an ``IN`` of bound values would be expanded at
# execution, which the driver's path refuses)
_OPEN = on_driver(
    _SHOWN.where(
        _CASES.c.resident_id == bindparam("rid"),
        _CASES.c.status.in_([literal_column(f"'{status}'") for status in CANCELLABLE]),
    )
    .order_by(_NEWEST_FIRST)
    .limit(9)
)


async def _my_cases(turn: Turn, statement: object = _RECENT) -> list[MyCase]:
    result = await turn.session.exec(statement, params={"rid": turn.resident.id})  # type: ignore[call-overload]
    return [MyCase(*row) for row in result]


async def query_progress(turn: Turn) -> str:
    case_no = find_case_no(turn.text) or (turn.parse.first("case_no") if turn.parse else None)
    if case_no:
        # someone else's number, or none at all: the same answer, nothing revealed
        params = {"case_no": case_no.upper(), "rid": turn.resident.id}
        row = (await turn.session.exec(_BY_NUMBER, params=params)).first()  # type: ignore[call-overload]
        return texts.CASE_NOT_FOUND if row is None else _detail(MyCase(*row))
    cases = await _my_cases(turn)
    if not cases:
        return texts.NO_CASES
    lines = ["您最近的诉求："]
    for c in cases:
        lines.append(f"· {c.case_no} {texts.KIND_LABEL.get(c.kind, '')}「{c.title}」：{_label(c.status)}")
    lines.append(f"发送编号可以查看详细进度。全部办理记录：{texts.link(_my_link(turn))}")
    return "\n".join(lines)


def _my_link(turn: Turn) -> str:
    assert turn.resident.id is not None
    return my_cases_url(
        base_url=turn.settings.base_url,
        link_secret=turn.settings.link_secret,
        resident_id=turn.resident.id,
        now=turn.now,
    )


def _detail(case: MyCase) -> str:
    when = case.updated_at.astimezone(CHINA).strftime("%m月%d日 %H:%M")
    what = case.title
    return (
        f"诉求{case.case_no}（{texts.KIND_LABEL.get(case.kind, '')}）\n"
        f"内容：{what}\n镇街：{case.town}\n当前状态：{_label(case.status)}（{when}更新）"
    )


async def start_cancel(turn: Turn) -> str:
    case_no = find_case_no(turn.text)
    cases = await _my_cases(turn, _OPEN)
    if case_no:
        cases = [c for c in cases if c.case_no == case_no.upper()]
    if not cases:
        return texts.NOTHING_TO_CANCEL
    if len(cases) == 1:
        turn.set_state("cancel_confirm", case_id=cases[0].id)
        return (
            f"确定要取消诉求{cases[0].case_no}（{cases[0].title}）吗？\n"
            "回复“确定”取消，可以顺便说说原因；回复“不”继续办理。"
        )
    turn.set_state("cancel_pick", case_ids=[c.id for c in cases])
    lines = ["您想取消哪一个？请回复数字："]
    lines += [f"{i} {c.case_no}（{c.title}）" for i, c in enumerate(cases, 1)]
    return "\n".join(lines)


async def continue_flow(turn: Turn) -> str:
    text = turn.text
    if turn.conv.state == "cancel_pick":
        ids = turn.conv.data.get("case_ids", [])
        m = re.match(r"^\s*(\d)\s*$", text)
        if not m or not 1 <= int(m.group(1)) <= len(ids):
            turn.set_state("idle")
            return "没有取消任何诉求。需要时再回复“取消”。"
        turn.set_state("cancel_confirm", case_id=ids[int(m.group(1)) - 1])
        return "确定取消吗？回复“确定”取消，可以顺便说说原因；回复“不”继续办理。"

    case = await turn.session.get(Case, turn.conv.data.get("case_id"))
    if DENY.match(text) or turn.intent == "deny":
        turn.set_state("idle")
        return texts.CANCEL_KEPT
    if case is None or case.resident_id != turn.resident.id or case.status not in CANCELLABLE:
        turn.set_state("idle")
        return texts.NOTHING_TO_CANCEL
    if AFFIRM.match(text) or turn.intent in ("affirm", "cancel_request"):
        reason = AFFIRM.sub("", text).strip("，,。 ") or None
        assert case.resident_id is not None
        await cancel_by_resident(
            turn.session, case=case, resident_id=case.resident_id, reason=reason, now=turn.now
        )
        turn.set_state("idle")
        return f"好的，诉求{case.case_no}已取消。谢谢您告诉我们，有需要随时再找我。"
    return "请回复“确定”取消，或回复“不”继续办理。"


async def answer_staff_question(turn: Turn) -> str | None:
    """When staff asked this resident something, the next message is the answer and lands on that case."""
    case = (
        await turn.session.exec(  # type: ignore[call-overload]
            select(Case)
            .where(col(Case.resident_id) == turn.resident.id, col(Case.awaiting_resident).is_(True))
            .order_by(col(Case.updated_at).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if case is None:
        return None
    await record_resident_answer(turn.session, case=case, text=turn.raw_text, now=turn.now)
    turn.inbound.case_id = case.id
    return texts.ANSWER_FORWARDED.format(case_no=case.case_no)


async def bind_by_code(turn: Turn) -> str | None:
    m = BIND.search(turn.text)
    bare = BARE_CODE.match(turn.text)
    if m is None and bare is not None:
        code = bare.group(1)
        if any(ch.isdigit() for ch in code) or code.isupper():
            m = bare
    if not m:
        return None
    try:
        case = await bind_case(turn.session, code=m.group(1), resident=turn.resident, now=turn.now)
    except BindError as exc:
        return str(exc)
    return (
        f"绑定成功：诉求{case.case_no}（{case.title}），当前状态：{_label(case.status)}。"
        "办理进度会在这里通知您。"
    )
