"""A resident's rights over their data in chat: "我的信息" shows what is held, "删除我的信息" erases it after an
explicit confirmation ("确认删除"); anything else at that point keeps everything."""

from __future__ import annotations

import re

from bot.cases.actors import Actor
from bot.cases.rights import erase_resident, held_data
from bot.conversation.dialogue.turn import Turn
from bot.states import ActorType

STATE = "erase_confirm"
SHOW = re.compile(r"^(查看|查询|看看)?我的(个人)?(信息|资料|数据)$")
ERASE = re.compile(r"^(删除|注销|清除|删掉)我的(个人)?(信息|资料|数据)(吧)?$")
CONFIRM = "确认删除"
ASK = (
    "删除后，我们会：\n1. 撤销您正在办理的诉求（会告知经办的工作人员）；\n"
    "2. 删除您的手机号、地址、姓名、您发来的消息和评价内容；\n"
    "3. 只保留不含个人信息的统计数字。\n删除后无法恢复。确定删除请回复“确认删除”，回复其他内容则不删除。"
)
KEPT = "好的，没有删除任何信息。"


async def route(turn: Turn) -> str | None:
    """The reply when the message is about the resident's own data; None otherwise."""
    text = re.sub(r"[\s。.!！?？,，]", "", turn.raw_text)
    if turn.conv.state == STATE:
        turn.set_state("idle")
        if text != CONFIRM:
            return KEPT
        assert turn.resident.id is not None
        done = await erase_resident(
            turn.session,
            resident=turn.resident,
            now=turn.now,
            requested_by=Actor(ActorType.RESIDENT, turn.resident.id),
            ground="居民在公众号内申请删除",
        )
        cancelled = f"已撤销诉求：{'、'.join(done.cancelled)}。\n" if done.cancelled else ""
        return f"{cancelled}您的个人信息已删除。以后需要帮助，随时再发消息给我们。"
    if SHOW.match(text):
        return await held_data(turn.session, resident=turn.resident)
    if ERASE.match(text):
        turn.set_state(STATE)
        return ASK
    return None
