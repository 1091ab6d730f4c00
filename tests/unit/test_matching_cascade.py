"""The offer cascade with time injected: accept, decline, timeout, exhaustion, top-k and late answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from matching.cascade import (
    Cascade,
    CascadeError,
    Exhausted,
    Matched,
    OfferSent,
    OfferWithdrawn,
    start_cascade,
)

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def test_single_mode_decline_moves_to_the_next_and_accept_matches() -> None:
    cascade, actions = start_cascade(["A", "B", "C"], now=T0)
    assert actions == [OfferSent("A", T0 + DAY)]
    reply = cascade.decline("A", T0 + timedelta(hours=1))
    assert reply.ok and reply.code == "declined"
    assert reply.actions == (OfferSent("B", T0 + timedelta(hours=1) + DAY),)
    reply = cascade.accept("B", T0 + timedelta(hours=2))
    assert reply.ok and reply.actions == (Matched("B"),)
    assert cascade.status == "matched" and cascade.winner == "B"
    assert "感谢认领" in reply.message
    assert cascade.tick(T0 + 10 * DAY) == []  # nothing more happens after a match
    assert cascade.remaining == ["C"]


def test_timeout_offers_the_next_candidate_with_a_full_deadline() -> None:
    cascade, _ = start_cascade(["A", "B"], now=T0, deadline=timedelta(hours=4))
    assert cascade.tick(T0 + timedelta(hours=3, minutes=59)) == []
    late_sweep = T0 + timedelta(hours=6)  # the sweep ran two hours late
    assert cascade.tick(late_sweep) == [
        OfferWithdrawn("A", "timeout"),
        OfferSent("B", late_sweep + timedelta(hours=4)),
    ]
    assert cascade.next_deadline == late_sweep + timedelta(hours=4)


def test_exhaustion_hands_the_case_back_with_counts() -> None:
    cascade, _ = start_cascade(["A", "B"], now=T0)
    cascade.decline("A", T0 + timedelta(minutes=5))
    actions = cascade.tick(T0 + 2 * DAY)
    assert actions == [OfferWithdrawn("B", "timeout"), Exhausted(declined=1, timed_out=1)]
    assert cascade.status == "exhausted" and cascade.next_deadline is None
    assert cascade.accept("B", T0 + 2 * DAY).code == "offer_expired"
    assert cascade.accept("A", T0 + 2 * DAY).code == "already_answered"


def test_an_empty_candidate_list_is_exhausted_at_once() -> None:
    cascade, actions = start_cascade([], now=T0)
    assert actions == [Exhausted()]
    assert cascade.status == "exhausted"


def test_accept_after_the_deadline_is_refused_even_before_the_sweep() -> None:
    cascade, _ = start_cascade(["A", "B"], now=T0)
    reply = cascade.accept("A", T0 + DAY + timedelta(seconds=1))
    assert not reply.ok and reply.code == "offer_expired"
    assert reply.actions == (
        OfferWithdrawn("A", "timeout"),
        OfferSent("B", T0 + 2 * DAY + timedelta(seconds=1)),
    )
    assert "超过回复时限" in reply.message


def test_top_k_first_accept_wins_and_late_accept_is_refused() -> None:
    cascade, actions = start_cascade(["A", "B", "C", "D", "E"], now=T0, mode="top_k", k=3)
    assert [a.key for a in actions if isinstance(a, OfferSent)] == ["A", "B", "C"]
    win = cascade.accept("B", T0 + timedelta(minutes=10))
    assert win.ok
    assert win.actions == (
        Matched("B"),
        OfferWithdrawn("A", "matched_elsewhere"),
        OfferWithdrawn("C", "matched_elsewhere"),
    )
    late = cascade.accept("A", T0 + timedelta(minutes=11))
    assert not late.ok and late.code == "already_matched" and late.actions == ()
    assert "已由其他爱心人士认领" in late.message
    assert cascade.accept("B", T0 + timedelta(minutes=12)).code == "already_answered"
    assert cascade.accept("E", T0 + timedelta(minutes=12)).code == "not_offered"
    assert cascade.winner == "B"


def test_top_k_keeps_k_offers_out_after_a_decline() -> None:
    cascade, _ = start_cascade(["A", "B", "C", "D"], now=T0, mode="top_k", k=2)
    reply = cascade.decline("A", T0 + timedelta(hours=1))
    assert reply.actions == (OfferSent("C", T0 + timedelta(hours=1) + DAY),)
    assert sorted(cascade.pending) == ["B", "C"]
    actions = cascade.tick(T0 + DAY)  # B lapses, C still has an hour
    assert actions == [OfferWithdrawn("B", "timeout"), OfferSent("D", T0 + 2 * DAY)]


def test_concurrent_accepts_give_exactly_one_match() -> None:
    cascade, _ = start_cascade(["A", "B", "C"], now=T0, mode="top_k", k=3)
    same_instant = T0 + timedelta(minutes=1)
    replies = [cascade.accept(key, same_instant) for key in ("C", "A", "B")]
    matched = [a for r in replies for a in r.actions if isinstance(a, Matched)]
    assert matched == [Matched("C")]
    assert [r.ok for r in replies] == [True, False, False]


def test_state_survives_a_json_round_trip_mid_cascade() -> None:
    cascade, _ = start_cascade(["A", "B", "C"], now=T0, mode="top_k", k=2, deadline=timedelta(hours=8))
    cascade.decline("A", T0 + timedelta(hours=1))
    restored = Cascade.from_dict(json.loads(json.dumps(cascade.to_dict())))
    assert restored.pending == cascade.pending and restored.remaining == cascade.remaining
    assert restored.tick(T0 + timedelta(hours=8)) == [OfferWithdrawn("B", "timeout")]
    assert restored.pending == ["C"]
    assert restored.accept("C", T0 + timedelta(hours=8, minutes=30)).ok


def test_cancel_and_reopen_with_new_candidates() -> None:
    cascade, _ = start_cascade(["A"], now=T0)
    cascade.decline("A", T0)
    assert cascade.status == "exhausted"
    actions = cascade.add_candidates(["A", "B"], T0 + DAY)  # A already answered: not asked again
    assert actions == [OfferSent("B", T0 + 2 * DAY)]
    assert cascade.cancel(T0 + DAY) == [OfferWithdrawn("B", "cancelled")]
    assert cascade.accept("B", T0 + DAY).code == "closed"


@pytest.mark.parametrize("kwargs", [{"mode": "all"}, {"mode": "top_k", "k": 0}, {"deadline": timedelta(0)}])
def test_misuse_is_rejected(kwargs: dict) -> None:
    with pytest.raises(CascadeError):
        Cascade(candidates=["A"], **kwargs)


def test_start_twice_is_an_error() -> None:
    cascade, _ = start_cascade(["A"], now=T0)
    with pytest.raises(CascadeError):
        cascade.start(T0)
