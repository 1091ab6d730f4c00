"""Creating a case: privacy consent, slots filled in any order, a summary, corrections, confirmation.

One request is one case, however many things it names ("米和油" → item 米、油; `slots.read_items`). Only when
the resident clearly says a second, separate matter follows ("另外还有个事 …") does that matter wait in a queue
and get offered as its own case once this one is submitted."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import col

from bot.cases.numbering import create_case
from bot.cases.titles import beneficiary_label, case_title
from bot.conversation.dialogue import texts
from bot.conversation.dialogue.cases import query_progress
from bot.conversation.dialogue.slots import (
    corrected_item,
    is_cancel,
    read_beneficiary,
    read_items,
    read_town,
    split_second_matter,
)
from bot.conversation.dialogue.turn import Turn
from bot.conversation.nlu import counted
from bot.conversation.nlu.keyword import parse_keywords
from bot.conversation.nlu.normalize import (
    find_beneficiary,
    find_town,
    parse_quantity,
    split_case_no,
    suggest_category,
)
from bot.driver import update_at_commit
from bot.models import InboundMessage
from reference.privacy import mask_phone, normalize_phone

DRAFT_STATES = frozenset({"consent", "draft", "confirm"})
ERASED = "（已删除：居民未同意隐私说明）"
# An unambiguous cancel ("不用了" / "不要了" at the phone question only mean "no phone").
CANCEL_WORDS = re.compile(
    r"^(那?算了|算啦|取消|取消申请|取消吧|不申请了|先不申请了|我不申请了|不办了|撤回|不要了|唔要了|冇事了|唔使申请了)"
    r"[吧啦了呀喇。.!！]*$"
)
CANCEL_IN_TEXT = re.compile(
    r"取消(这个|这次|这份)?(申请|登记)|不申请了|不用申请了|不要申请了|唔申请了|撤回申请"
)
CONFIRM_CANCEL = re.compile(
    r"^(是|是的|对|确定|确认|嗯|好|好的|取消|取消吧|算了|不要了|不申请了|系|系啊|OK|ok)"
)
KEEP_GOING = re.compile(r"^(不|不是|不要取消|不取消|继续|接着|唔好|唔使|别)")
AFFIRM_WORDS = re.compile(
    r"^(确认|对|是的|是|没问题|好|好的|可以|提交|ok|OK|嗯|同意|行|冇问题|系|啱)[的啊呀吧了。!！]*$"
)
DENY_WORDS = re.compile(r"^(不对|不是|错了|有误|不同意|唔系|唔啱)[的啊呀吧了。!！]*$")
NO_PHONE = re.compile(r"不用|不方便|没有|没电话|不留|唔使|冇|不要|不想|不需要|暂时不|先不|唔方便")
# "我想申请微心愿": asks to apply but says nothing yet about the need
NO_CONTENT = re.compile(
    r"^(我|我们)?(想|要|想要|需要)?(申请|反映|登记|报|提)(一[个下]|个)?(微心愿|微实事|心愿|诉求|问题|申请)?[吧啊呀。.!！]*$"
)
NOT_X = re.compile(r"(不是|唔系|并非|而不是)[^，,。；;！!？?\s]{1,8}")
#: a message that only asks how one's cases are going ("查询进度", "我之前的申请进度怎么样了") or names one's case
#: ("查询MS20261207-0003"): made of these words alone, it is answered in the middle of an application, whose question
#: is then asked again
PROGRESS_WORDS = re.compile(
    r"^(?:请|麻烦|你|您|帮我|帮忙|我想|我要|想|要|查询|查一下|查下|查|看看|看一下|问下|问一下|一下|我们|我|的|"
    r"之前|上次|以前|那个|诉求|申请|心愿|微心愿|微实事|案件|事情|事|办理|编号|进度|进展|怎么样了|怎么样|如何|"
    r"到哪了|到哪|哪一步了|了|吗|呢|啊|呀|[\s，,。.!！?？:：])+$"
)


def _draft(turn: Turn) -> dict[str, Any]:
    return dict(turn.conv.data.get("draft") or {})


async def start_draft(turn: Turn, *, kind: str, text: str) -> str:
    draft: dict[str, Any] = {"kind": kind, "phone_asked": False, "degraded": turn.degraded}
    if turn.conv.data.get("last_town"):
        draft["town"] = turn.conv.data["last_town"]
        draft["address"] = turn.conv.data.get("last_address") or None
    msg_ids = [turn.inbound.id]
    turn.set_state("draft", draft=draft, msg_ids=msg_ids, expect=None)
    if text:
        _absorb(turn, draft, text, describing=True)
        first, second = split_second_matter(text)
        model_items = turn.parse.all("item") if turn.parse else []
        later = read_items(second, model_items) if second else None
        if second and later and later.items:
            # the resident said plainly that a second matter follows: it becomes its own case afterwards
            guess = parse_keywords(second).intent
            other_kind = guess if guess in ("micro_wish", "micro_project") else kind
            draft["description"] = first[:1000]
            turn.update(queue=[{"text": second[:500], "kind": other_kind, "item": later.value}])
    turn.update(draft=draft)
    if turn.resident.consent_at is None:
        turn.set_state("consent")
        return texts.PRIVACY
    return _next_question(turn, draft, first=True)


def _asks_progress(text: str) -> bool:
    """Only a progress query: "进度" / "进展" or a case number, with nothing but ``PROGRESS_WORDS`` around it."""
    case_no, words = split_case_no(text)
    asked = case_no is not None or "进度" in words or "进展" in words
    return asked and (not words.strip() or bool(PROGRESS_WORDS.match(words)))


async def continue_draft(turn: Turn) -> str:
    text = turn.text
    draft = _draft(turn)
    state = turn.conv.state
    if _asks_progress(text):
        # "查询进度" in the middle of an application (often while the privacy notice waits for an answer): the
        # resident's cases, then the question they were on; the message is not part of the application
        if turn.conv.data.get(
            "confirm_cancel"
        ):  # asked to drop the application, the resident asked this instead
            turn.update(confirm_cancel=False)
        again = texts.PRIVACY_AGAIN if state == "consent" else _ask_again(turn, draft)
        listed = await query_progress(turn)
        return (texts.NO_CASES_YET if listed == texts.NO_CASES else listed) + "\n\n" + again
    turn.update(msg_ids=[*turn.conv.data.get("msg_ids", []), turn.inbound.id])

    expect = turn.conv.data.get("expect")
    if turn.conv.data.get("confirm_cancel"):
        turn.update(confirm_cancel=False)
        if CONFIRM_CANCEL.match(text):
            turn.set_state("idle")
            return texts.DRAFT_CANCELLED
        if KEEP_GOING.match(text):
            return texts.DRAFT_KEPT + _ask_again(turn, draft)
        # anything else: the resident carries on with the draft

    elif (
        expect == "phone"
        and state == "draft"
        and NO_PHONE.search(text)
        and not normalize_phone(text)
        and not CANCEL_IN_TEXT.search(text)
    ):
        # "不用了" / "不用留" / "不方便" / "没有" at the phone question: no phone, the draft goes on
        draft["phone"] = ""
        draft["phone_asked"] = True
        turn.update(draft=draft)
        return _next_question(turn, draft)

    elif (
        CANCEL_WORDS.match(text)
        or is_cancel(text)
        or (turn.intent == "cancel_request" and CANCEL_IN_TEXT.search(text))
    ):
        if state == "consent":  # withdrawn before agreeing: like a refusal, nothing of it is kept
            await _erase_draft_words(turn)
            turn.set_state("idle")
            return texts.DRAFT_CANCELLED
        if not (draft.get("description") or draft.get("item")):
            turn.set_state("idle")
            return texts.DRAFT_CANCELLED
        turn.update(
            confirm_cancel=True
        )  # the draft holds the resident's words: ask once before dropping them
        return texts.DRAFT_CANCEL_ASK.format(what=_short(draft))

    if state == "consent":
        if AFFIRM_WORDS.match(text) or turn.intent == "affirm":
            turn.resident.consent_at = turn.now
            turn.resident.consent_version = turn.settings.privacy_notice_version
            turn.set_state("draft")
            return "谢谢您的信任。" + _next_question(turn, draft, first=True)
        if DENY_WORDS.match(text) or turn.intent == "deny" or "不同意" in text:
            await _erase_draft_words(turn)
            turn.set_state("idle")
            return texts.PRIVACY_REFUSED
        return texts.PRIVACY_AGAIN

    if state == "confirm":
        if AFFIRM_WORDS.match(text) or (turn.intent == "affirm" and not _has_slot_info(turn, text)):
            return await _submit(turn, draft)
        if DENY_WORDS.match(text) and not _has_slot_info(turn, text):
            turn.update(expect=None)
            return texts.ASK_FIX
        changed = _absorb(turn, draft, text, describing=False, correcting=True)
        turn.update(draft=draft)
        if not changed:
            return texts.ASK_FIX
        return _next_question(turn, draft)

    # collecting slots
    took = False
    if expect == "kind":
        if text.strip() in ("1", "微心愿") or turn.intent == "micro_wish":
            draft["kind"] = "micro_wish"
        elif text.strip() in ("2", "微实事") or turn.intent == "micro_project":
            draft["kind"] = "micro_project"
        _absorb(turn, draft, text, describing=not text.strip().isdigit() and len(text) >= 6)
    elif expect == "what":
        _absorb(turn, draft, text, describing=True)
    elif expect == "phone":
        if not _absorb(turn, draft, text, describing=False) and NO_PHONE.search(text):
            draft["phone"] = ""
        draft["phone_asked"] = True
    else:
        took = _absorb(turn, draft, text, describing=False)
    if expect == "town" and not draft.get("town"):
        turn.update(draft=draft)
        # an answer that carried something else (a phone number) was taken: say so, and ask for the town again
        return texts.TOOK_ASK_TOWN if took else texts.ASK_TOWN_AGAIN
    turn.update(draft=draft)
    return _next_question(turn, draft)


async def _erase_draft_words(turn: Turn) -> None:
    """PIPL: without consent nothing of this draft is kept — the messages' words are erased."""
    ids = [i for i in turn.conv.data.get("msg_ids", []) if i]
    await turn.session.exec(
        update(InboundMessage).where(col(InboundMessage.id).in_(ids)).values(text=ERASED, media={})
    )


async def set_location(turn: Turn, *, town: str, address: str) -> str:
    draft = _draft(turn)
    draft["town"] = town
    if address:
        draft["address"] = address[:120]
    turn.update(draft=draft)
    return f"收到位置，在{town}附近。" + _next_question(turn, draft)


def _has_slot_info(turn: Turn, text: str) -> bool:
    return bool(find_town(text) or normalize_phone(text) or (turn.parse and turn.parse.entities))


def _absorb(
    turn: Turn, draft: dict[str, Any], text: str, *, describing: bool, correcting: bool = False
) -> bool:
    """Takes every slot this message carries; returns whether anything changed."""
    before = dict(draft)
    p = turn.parse
    # "不对，是厚街不是虎门": what follows 不是 is the wrong value, never the new one
    positive = NOT_X.sub("", text)
    town = read_town(text)  # "在凤岗 哦不对 是清溪": the corrected town, never a negated one
    if town is None and p is not None and not correcting:
        town = p.first("town")
    if town:
        draft["town"] = town
    phone = normalize_phone(text) or (normalize_phone(p.first("phone")) if p and p.first("phone") else None)
    if phone:
        draft["phone"] = phone
        draft["phone_asked"] = True
    model_items = p.all("item") if p is not None else []
    if correcting:
        fixed = corrected_item(text, model_items, current=draft.get("item"))
        if fixed:
            draft["item"] = fixed
    elif not draft.get("item"):
        # one request, however many things it names; junk spans and synonyms of the first thing are dropped
        found = read_items(text, model_items, wish=draft.get("kind") != "micro_project").value
        if found and (describing or model_items):
            draft["item"] = found
    if p is not None:
        ben = read_beneficiary(text, p.first("beneficiary")) if p.first("beneficiary") else None
        if ben and draft.get("kind") != "micro_project":  # a project serves a community, not one person
            draft["beneficiary"] = ben
        qty = p.first("quantity")
        if qty and qty.isdigit():
            draft["quantity"] = int(qty)
    if draft.get("kind") == "micro_wish" and not draft.get("beneficiary") and describing:
        ben = find_beneficiary(positive)
        if ben:
            draft["beneficiary"] = ben
    if draft.get("quantity") is None and draft.get("item"):
        q = parse_quantity(text)
        if q and q < 1000:
            draft["quantity"] = q
    # several things: one quantity only when it counts each alike (nlu/counted.py)
    if draft.get("item") and "、" in draft["item"]:
        words = f"{draft.get('description') or ''}；{text}"
        draft["quantity"] = counted.shared(words, draft["item"].split("、"), draft.get("quantity"))
    if describing and len(text) >= 2 and not NO_CONTENT.match(text):
        if draft.get("description") and text not in draft["description"]:
            draft["description"] = (draft["description"] + "；" + text)[:1000]
        else:
            draft.setdefault("description", text[:1000])
    if correcting and turn.intent in ("micro_wish", "micro_project") and re.search(r"微心愿|微实事", text):
        draft["kind"] = turn.intent
    return draft != before


def _next_question(turn: Turn, draft: dict[str, Any], *, first: bool = False) -> str:
    if not draft.get("kind"):
        turn.update(expect="kind", draft=draft)
        return texts.ASK_KIND
    if not draft.get("description"):
        turn.update(expect="what", draft=draft)
        return texts.ASK_WHAT
    if not draft.get("town"):
        turn.update(expect="town", draft=draft)
        lead = f"好的，记下了：{_short(draft)}。\n" if first else ""
        return lead + texts.ASK_TOWN
    if not draft.get("phone_asked"):
        draft["phone_asked"] = True
        turn.update(expect="phone", draft=draft)
        return texts.ASK_PHONE
    turn.set_state("confirm", draft=draft, expect=None)
    return summary(draft)


def _short(draft: dict[str, Any]) -> str:
    return draft_title(draft)


def draft_title(draft: dict[str, Any]) -> str:
    return case_title(
        item=draft.get("item"),
        quantity=draft.get("quantity"),
        beneficiary=draft.get("beneficiary"),
        description=draft.get("description"),
    )


def _ask_again(turn: Turn, draft: dict[str, Any]) -> str:
    """The question the resident was answering before an interruption."""
    if turn.conv.state == "confirm":
        return summary(draft)
    if turn.conv.data.get("expect") == "phone":
        draft["phone_asked"] = False  # the phone question was interrupted: ask it again
    return _next_question(turn, draft)


def summary(draft: dict[str, Any]) -> str:
    lines = ["请核对您的申请：", f"类型：{texts.KIND_LABEL[draft['kind']]}"]
    if draft.get("item"):
        qty = f" × {draft['quantity']}" if draft.get("quantity") else ""
        lines.append(f"需要：{draft['item']}{qty}")
    lines.append(f"情况：{draft['description'][:80]}")
    if who := beneficiary_label(draft.get("beneficiary")):  # the title's word: "爸" reads "父亲" in both
        lines.append(f"为谁：{who}")
    lines.append(f"镇街：{draft['town']}" + (f"（{draft['address']}）" if draft.get("address") else ""))
    lines.append(f"电话：{mask_phone(draft['phone']) if draft.get('phone') else '未留'}")
    if draft.get("images"):
        lines.append(f"照片：{len(draft['images'])}张")
    lines.append(
        "没问题请回复“确认”；要修改直接告诉我（打字或发语音都行），比如“不对，是虎门”；回复“算了”取消。"
    )
    return "\n".join(lines)


async def _submit(turn: Turn, draft: dict[str, Any]) -> str:
    session = turn.session
    kind = draft["kind"]
    case = await create_case(
        session,
        kind=kind,
        description=draft["description"],
        town=draft["town"],
        resident_id=turn.resident.id,
        channel="wechat",
        item=draft.get("item"),
        quantity=draft.get("quantity"),
        suggested_category=suggest_category(kind, draft["description"], draft.get("item")),
        address=draft.get("address"),
        beneficiary=draft.get("beneficiary"),
        contact_phone=draft.get("phone") or None,
        needs_triage=bool(draft.get("degraded")) or turn.degraded,
        actor_name="居民",
        now=turn.now,
    )
    if draft.get("phone") and not turn.resident.phone:
        turn.resident.phone = draft["phone"]
    msg_ids = [i for i in turn.conv.data.get("msg_ids", []) if i]
    # on PostgreSQL with the COMMIT, in its round trip (nothing in the turn reads these rows after)
    if not update_at_commit(session, _MESSAGES, msg_ids, {"case_id": case.id}):
        await session.exec(_LINK_MESSAGES, params={"ids": msg_ids, "new_case_id": case.id})
    reply = (
        f"已为您登记{texts.KIND_LABEL[kind]}，编号：{case.case_no}\n"
        "接下来社区工作人员会先核实情况，有进展会在这里通知您。回复“查询进度”可以随时查看。"
    )
    queue = [q for q in (turn.conv.data.get("queue") or []) if isinstance(q, dict)]
    if queue:
        # a second matter the resident named as such ("另外还有个事 …"): offered as its own case
        later = queue[0]
        nxt = {k: draft.get(k) for k in ("town", "address", "phone", "degraded")}
        nxt.update(
            kind=later.get("kind") or kind,
            item=later.get("item"),
            description=str(later.get("text") or "")[:1000],
            phone_asked=True,
        )
        turn.set_state("idle")
        turn.set_state("confirm", draft=nxt, queue=queue[1:], msg_ids=[], expect=None)
        what = later.get("item") or str(later.get("text") or "")[:12]
        return reply + f"\n\n您还提到了另一件事“{what}”，也帮您单独登记：\n" + summary(nxt)
    turn.set_state("idle")
    return reply


_MESSAGES = InboundMessage.__table__  # type: ignore[attr-defined]
# the draft's messages joined to the case it filed, built once (an expanding IN: any number of ids)
# (on the table: an ORM ``update(InboundMessage)`` took SQLAlchemy's bulk-update path, which searches the session
# for the rows to synchronise; the records are never ORM objects here)
_LINK_MESSAGES = (
    _MESSAGES.update()
    .where(_MESSAGES.c.id.in_(bindparam("ids", expanding=True)))
    .values(case_id=bindparam("new_case_id"))
)
