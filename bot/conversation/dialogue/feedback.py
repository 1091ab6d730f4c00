"""Satisfaction: survey answers in chat (the survey itself lives in bot.cases.survey) and ratings outside a survey."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from bot.cases.survey import answer_from_chat
from bot.conversation.dialogue import texts
from bot.conversation.dialogue.turn import Turn
from bot.conversation.nlu.normalize import parse_score
from bot.models import Case, Feedback
from bot.states import DONE


async def survey_answer(turn: Turn) -> str | None:
    return await answer_from_chat(
        turn.session,
        resident=turn.resident,
        text=turn.text,
        score=parse_score(turn.text),
        now=turn.now,
        intent=turn.parse.intent if turn.parse else None,
    )


async def rate_outside_survey(turn: Turn, *, bare_digit: bool = False) -> str | None:
    """A score or a word of satisfaction outside a survey: kept as feedback on the resident's latest finished case
    (or on none). A ``bare_digit`` ("1") from a resident with no finished case is no rating: more likely a menu
    choice they remember or saw in a broadcast; nothing is kept and None is returned (the caller offers the menu)."""
    if bare_digit and turn.read_awaiting is not None and not turn.read_awaiting.finished:
        return None  # nothing finished to rate, as read with the rare states: no statement
    case = (
        await turn.session.exec(  # type: ignore[call-overload]
            select(Case)
            .where(col(Case.resident_id) == turn.resident.id, col(Case.status).in_(DONE))
            .order_by(col(Case.updated_at).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if case is None and bare_digit:
        return None
    turn.session.add(
        Feedback(
            resident_id=turn.resident.id,
            case_id=case.id if case else None,
            score=parse_score(turn.text),
            text=turn.text[:500],
            created_at=turn.now,
        )
    )
    if case is not None:
        turn.inbound.case_id = case.id
        return texts.FEEDBACK_THANKS
    return texts.FEEDBACK_NO_CASE
