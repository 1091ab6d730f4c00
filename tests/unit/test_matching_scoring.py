"""Hard filters, score components and ranking of the matching engine."""

from __future__ import annotations

import dataclasses
import statistics
import time

import pytest

from matching.generator import generate_pool, generate_wishes
from matching.model import COMPONENT_LABELS, Resource, Weights, Wish
from matching.scoring import (
    Pool,
    Rules,
    capacity,
    category_fit,
    distance,
    eligible,
    fairness,
    item_fit,
    rank,
    rating,
    reliability,
    score,
)


def make_resource(key: str = "R1", **changes: object) -> Resource:
    base = Resource(
        key=key,
        kind="individual",
        name="陈伟",
        contact="陈伟",
        phone="13812345678",
        categories=frozenset({"助残"}),
        items=frozenset({"轮椅"}),
        home_town="虎门镇",
        towns_served=frozenset({"虎门镇", "厚街镇"}),
        capacity_open=2,
        capacity_month=4,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


WISH = Wish(case_id=1, category="助残", item="轮椅", town="虎门镇")


# --- hard filters ----------------------------------------------------------------------------------------------


def test_a_fitting_resource_is_eligible() -> None:
    assert eligible(make_resource(), WISH) is None


@pytest.mark.parametrize(
    ("changes", "wish_changes", "reason"),
    [
        ({"active": False}, {}, "已停用"),
        ({"available": False}, {}, "暂不可接单"),
        ({"open_matches": 2}, {}, "同时承接已满"),
        ({"month_matches": 4}, {}, "本月名额已满"),
        ({"capacity_open": 20, "capacity_month": 40, "open_matches": 5}, {}, "未完成的匹配过多"),
        ({}, {"town": "长安镇"}, "不服务长安镇"),
        ({}, {"category": "助学", "item": None}, "不提供助学类帮助"),
        ({"items": frozenset({"拐杖"})}, {}, "不提供轮椅"),
        (
            {"categories": frozenset({"助医"}), "items": frozenset({"资金"}), "max_fund": 500},
            {"category": "助医", "item": "资金", "amount": 1500},
            "资助上限500元",
        ),
    ],
)
def test_each_hard_filter_names_its_reason(changes: dict, wish_changes: dict, reason: str) -> None:
    resource = make_resource(**changes)
    wish = dataclasses.replace(WISH, **wish_changes)
    excluded = eligible(resource, wish)
    assert excluded is not None and reason in excluded
    assert rank([resource], wish) == []


def test_anti_hoarding_threshold_is_configurable() -> None:
    busy = make_resource(capacity_open=20, capacity_month=40, open_matches=5)
    assert eligible(busy, WISH, rules=Rules(max_unfinished=5)) is not None
    assert eligible(busy, WISH, rules=Rules(max_unfinished=6)) is None
    assert Pool([busy], rules=Rules(max_unfinished=6)).rank(WISH)[0].key == busy.key
    assert Pool([busy], rules=Rules(max_unfinished=5)).rank(WISH) == []


def test_city_wide_resource_serves_every_town_and_short_names_work() -> None:
    city = make_resource(towns_served=frozenset())
    assert eligible(city, dataclasses.replace(WISH, town="凤岗镇")) is None
    assert eligible(make_resource(), dataclasses.replace(WISH, town="虎门")) is None  # short form
    assert eligible(make_resource(), dataclasses.replace(WISH, town="凤岗")) == "不服务凤岗镇"


def test_general_offer_of_a_category_covers_any_item_and_fund_limit_is_checked() -> None:
    general = make_resource(items=frozenset())
    assert eligible(general, dataclasses.replace(WISH, item="助听器")) is None
    rich = make_resource(categories=frozenset({"助医"}), items=frozenset({"资金"}), max_fund=2000)
    assert eligible(rich, Wish(case_id=2, category="助医", item="资金", town="虎门镇", amount=1500)) is None


# --- components ------------------------------------------------------------------------------------------------


def test_category_fit_prefers_specialists() -> None:
    specialist = make_resource()
    spread = make_resource(
        categories=frozenset({"助残", "助学", "助老", "助医", "生活物资", "就业帮扶", "心理关爱", "其他"})
    )
    assert category_fit(specialist, WISH) == 1.0
    assert category_fit(spread, WISH) == 0.5
    assert category_fit(make_resource(categories=frozenset({"助学"})), WISH) == 0.0


def test_item_fit_exact_general_and_unspecified() -> None:
    assert item_fit(make_resource(), WISH) == 1.0
    assert item_fit(make_resource(items=frozenset()), WISH) == pytest.approx(0.6)
    assert item_fit(make_resource(items=frozenset({"拐杖"})), WISH) == 0.0
    assert item_fit(make_resource(items=frozenset({"拐杖"})), dataclasses.replace(WISH, item=None)) == 1.0


def test_distance_decays_with_the_town_centroids() -> None:
    wish = dataclasses.replace(WISH, town="虎门镇")
    same = distance(make_resource(home_town="虎门镇"), wish)
    near = distance(make_resource(home_town="厚街镇"), wish)  # about 13 km
    far = distance(make_resource(home_town="谢岗镇"), wish)  # about 50 km
    assert same == 1.0
    assert 0.3 < near < 1.0
    assert 0.0 < far < near / 5
    assert distance(make_resource(home_town="火星"), wish) == 0.5


def test_capacity_is_the_tighter_share_left() -> None:
    assert capacity(make_resource(capacity_open=4, open_matches=0, capacity_month=8, month_matches=0)) == 1.0
    assert capacity(make_resource(capacity_open=4, open_matches=2, capacity_month=8, month_matches=2)) == 0.5
    assert capacity(make_resource(capacity_open=4, open_matches=0, capacity_month=8, month_matches=6)) == 0.25


def test_fairness_falls_with_recent_load() -> None:
    values = [fairness(make_resource(recent_load=load)) for load in (0, 1, 2, 5)]
    assert values[0] == 1.0
    assert values == sorted(values, reverse=True) and len(set(values)) == 4
    # A large enterprise carries two recent matches more easily than an individual.
    assert fairness(make_resource(recent_load=2, capacity_month=30)) > fairness(make_resource(recent_load=2))


def test_reliability_smooths_newcomers_to_the_prior() -> None:
    newcomer = reliability(make_resource())
    assert newcomer == pytest.approx(0.8)
    one_accept_done = reliability(make_resource(offers=1, accepts=1, completions=1))
    one_decline = reliability(make_resource(offers=1, declines=1))
    assert newcomer < one_accept_done < 0.95  # one good answer is not a perfect record
    assert 0.5 < one_decline < newcomer  # one decline is not a zero
    veteran = reliability(make_resource(offers=40, accepts=38, declines=2, completions=38))
    ghost = reliability(make_resource(offers=20, timeouts=15, declines=5))
    assert veteran > 0.9 > newcomer > ghost
    unfinished = reliability(make_resource(offers=10, accepts=10, completions=2))
    assert unfinished < reliability(make_resource(offers=10, accepts=10, completions=10))


def test_rating_is_smoothed() -> None:
    assert rating(make_resource()) == pytest.approx(0.75)
    assert (
        rating(make_resource(rating_sum=5.0, rating_count=1))
        < rating(make_resource(rating_sum=50.0, rating_count=10))
        < 1.0
    )
    assert rating(make_resource(rating_sum=10.0, rating_count=10)) < 0.3


def test_every_component_stays_in_unit_interval_over_the_generated_pool() -> None:
    pool = Pool(generate_pool(n=400, seed=7))
    for wish in generate_wishes(n=60, seed=8):
        for candidate in pool.rank(wish, limit=None):
            assert set(candidate.components) == set(COMPONENT_LABELS)
            assert all(0.0 <= v <= 1.0 for v in candidate.components.values()), candidate
            assert 0.0 <= candidate.total <= 1.0


# --- ranking ---------------------------------------------------------------------------------------------------


def test_ranking_prefers_the_nearer_the_fresher_and_the_reliable() -> None:
    near = make_resource("A", home_town="虎门镇")
    far = make_resource("B", home_town="厚街镇")
    busy = make_resource("C", recent_load=3.0)
    flaky = make_resource("D", offers=10, declines=6, timeouts=4)
    ranked = rank([flaky, busy, far, near], WISH)
    assert [c.key for c in ranked][0] == "A"
    assert ranked[-1].key in {"B", "D"}
    assert [c.key for c in ranked].index("C") > 0


def test_ties_break_by_key_limit_and_exclude() -> None:
    resources = [make_resource(f"R{i}") for i in (3, 1, 2)]
    assert [c.key for c in rank(resources, WISH)] == ["R1", "R2", "R3"]
    assert [c.key for c in rank(resources, WISH, limit=2)] == ["R1", "R2"]
    assert [c.key for c in rank(resources, WISH, exclude={"R1"})] == ["R2", "R3"]
    assert [c.key for c in Pool(resources).rank(WISH, exclude={"R2"})] == ["R1", "R3"]


def test_reasons_speak_plain_chinese() -> None:
    candidate = score(
        make_resource(
            recent_load=2.0, offers=5, accepts=4, declines=1, completions=3, rating_sum=14.0, rating_count=3
        ),
        WISH,
    )
    assert "同镇街" in candidate.reasons
    assert "近30天已承接2单" in candidate.reasons
    assert "可提供轮椅" in candidate.reasons
    assert "接受率80%" in candidate.reasons
    assert "平均评分4.7（3次）" in candidate.reasons
    far = score(make_resource(home_town="厚街镇", towns_served=frozenset()), WISH)
    assert any(r.startswith("服务全市，相距约") for r in far.reasons)
    assert score(make_resource(), WISH).reasons[-2:] == ["新加入，可靠度按平均水平计", "暂无评价"]
    assert [label for label, _ in candidate.labelled()][:3] == ["类别匹配", "物品匹配", "距离"]


def test_weights_come_from_configuration_and_change_the_order() -> None:
    near_busy = make_resource("A", home_town="虎门镇", recent_load=6.0)
    far_fresh = make_resource("B", home_town="厚街镇")
    by_distance = Weights.from_mapping({"distance": 10, "fairness": 0})
    by_fairness = Weights.from_mapping({"距离": 0, "负荷均衡": 10})
    assert rank([near_busy, far_fresh], WISH, weights=by_distance)[0].key == "A"
    assert rank([near_busy, far_fresh], WISH, weights=by_fairness)[0].key == "B"
    assert Weights.from_mapping(None) == Weights()
    with pytest.raises(ValueError, match="unknown weight"):
        Weights.from_mapping({"charm": 1})
    with pytest.raises(ValueError):
        Weights.from_mapping({"distance": -1})
    with pytest.raises(ValueError):
        Weights.from_mapping({"distance": "far"})


def test_pool_ranks_exactly_like_the_reference_and_fast() -> None:
    resources = generate_pool()
    pool = Pool(resources)
    wishes = generate_wishes(n=300, seed=99)
    for wish in wishes[:80]:
        fast = [(c.key, round(c.total, 9)) for c in pool.rank(wish)]
        slow = [(c.key, round(c.total, 9)) for c in rank(resources, wish)]
        assert fast == slow, wish
    timings = []
    for wish in wishes:
        started = time.perf_counter()
        pool.rank(wish)
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) * 1000 <= 5.0


def test_pool_snapshot_update_and_exclusion_summary() -> None:
    a, b = make_resource("A"), make_resource("B", home_town="厚街镇")
    pool = Pool([a, b])
    assert [c.key for c in pool.rank(WISH)] == ["A", "B"]
    later = pool.updated(dataclasses.replace(a, available=False))
    assert [c.key for c in later.rank(WISH)] == ["B"]
    assert later.exclusions(WISH) == {"A": "暂不可接单"}
    assert later.exclusion_summary(dataclasses.replace(WISH, town="凤岗镇"))["不服务凤岗镇"] == 1
    with pytest.raises(ValueError, match="duplicate"):
        Pool([a, a])
