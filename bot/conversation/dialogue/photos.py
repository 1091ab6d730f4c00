"""A photo a volunteer of the resource pool sends in chat: the answer says where it went.

``bot.media.keep`` has already linked the stored image to the volunteer's task when they work on exactly one; the
reply names that task, says staff will see it and how to report the help finished. With several open tasks the
volunteer picks one by number (state ``photo_task``), which links the photo then. A sender with no task (or an open
case of their own) is answered as a resident."""

from __future__ import annotations

import re

from sqlmodel import col, select

from bot.conversation.dialogue.turn import Turn
from bot.media.archive import volunteer_tasks
from bot.media.tables import StoredMedia
from bot.models import Case
from bot.pool.config import wish_what, wish_where

STATES = frozenset({"photo_task"})
#: how many open tasks the numbered choice lists
MAX_CHOICES = 9
_DIGIT = re.compile(r"^\s*([1-9])\s*[。.、]?\s*$")
FINISH_HINT = "帮助完成后回复“已完成”，送到了回复“已送达”，就算报告了进度。"


async def _stored_photo(turn: Turn) -> StoredMedia | None:
    assert turn.inbound.id is not None
    return (
        await turn.session.exec(select(StoredMedia).where(col(StoredMedia.inbound_id) == turn.inbound.id))
    ).first()


def attached(case: Case, *, several: bool = False) -> str:
    finish = (
        FINISH_HINT
        if not several
        else FINISH_HINT.replace("“已完成”", f"“已完成 {case.case_no}”").replace(
            "“已送达”", f"“已送达 {case.case_no}”"
        )
    )
    return (
        f"照片收到了，已附到您正在帮助的心愿{case.case_no}（{wish_what(case)}，{wish_where(case)}），"
        f"工作人员会看到。\n{finish}"
    )


async def volunteer_photo(turn: Turn) -> str | None:
    """The answer to a volunteer's photo, or None when the sender is not a volunteer at work on a task."""
    photo = await _stored_photo(turn)
    if photo is None:
        return None
    if photo.source == "volunteer" and photo.case_id is not None:
        case = await turn.session.get(Case, photo.case_id)
        return attached(case) if case is not None else None
    tasks = await volunteer_tasks(turn.session, openid=turn.resident.openid, limit=MAX_CHOICES)
    if len(tasks) < 2:
        return None
    turn.set_state("photo_task", media=photo.id, cases=[c.id for c in tasks])
    lines = [f"{i} {c.case_no}（{wish_what(c)}，{wish_where(c)}）" for i, c in enumerate(tasks, 1)]
    return "照片收到了。您有几个正在帮助的心愿，这张照片是哪一个的？请回复数字：\n" + "\n".join(lines)


async def choose(turn: Turn) -> str | None:
    """The volunteer's number in state ``photo_task``: the photo goes to that task. None for anything else (the
    state is left and the message is read as a new one)."""
    m = _DIGIT.match(turn.text)
    cases = [int(c) for c in turn.conv.data.get("cases", [])]
    media_id = int(turn.conv.data.get("media") or 0)
    if m is None:
        turn.set_state("idle")
        return None
    index = int(m.group(1))
    if index > len(cases):
        return f"请回复1到{len(cases)}之间的数字。"
    turn.set_state("idle")
    photo = await turn.session.get(StoredMedia, media_id) if media_id else None
    open_now = await volunteer_tasks(turn.session, openid=turn.resident.openid, limit=MAX_CHOICES)
    case = next((c for c in open_now if c.id == cases[index - 1]), None)
    if photo is None or case is None:
        return "这个心愿已经办结或取消了，照片没有附上。需要的话请重新发一次照片。"
    if photo.case_id is None:  # the media sweep writes the timeline event once the image is stored
        photo.case_id, photo.source = case.id, "volunteer"
        turn.session.add(photo)
    return attached(case, several=True)
