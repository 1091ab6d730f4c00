"""Matching's hard filters at their boundaries, with the expected outcome written by hand from the rules (the
docstrings of matching/scoring.py and matching/model.py, DOMAIN.md's pool), never computed by the engine:

- a resource takes no new wish when it is deactivated, marked unavailable, has as many open matches as it may hold at
  once, has used its monthly number, or has ``max_unfinished`` open matches (anti-hoarding) — and takes one the moment
  it is one below each limit;
- it must serve the wish's town (an empty town list or 全市 = the whole city; short town names count), offer the
  category, and the item: the exact item, or the whole category when it lists none of that category's items;
- a money wish needs ``max_fund`` at least the amount (equal is enough; no limit or no amount is no obstacle);
- the indexed ``Pool`` keeps exactly the resources ``eligible`` keeps, and gives a batch only the slots left.
"""

from __future__ import annotations

import dataclasses

import pytest

from matching.model import Resource, Wish
from matching.scoring import Pool, Rules, eligible, offers_item, resource_exclusion, score, town_name


def resource(key: str = "R1", **changes: object) -> Resource:
    base = Resource(
        key=key,
        kind="individual",
        name="志愿者",
        categories=frozenset({"助残"}),
        items=frozenset({"轮椅"}),
        home_town="虎门镇",
        towns_served=frozenset({"虎门镇"}),
        capacity_open=3,
        capacity_month=6,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


WHEELCHAIR = Wish(case_id=1, category="助残", item="轮椅", town="虎门镇")


# --- what a resource can take at all -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({"active": False}, "已停用"),
        ({"available": False}, "暂不可接单"),
        ({"open_matches": 2}, None),  # one below capacity_open = 3
        ({"open_matches": 3}, "同时承接已满（3/3）"),
        ({"open_matches": 4}, "同时承接已满（4/3）"),
        ({"month_matches": 5}, None),  # one below capacity_month = 6
        ({"month_matches": 6}, "本月名额已满（6/6）"),
        ({"month_matches": 9}, "本月名额已满（9/6）"),
        (
            {"capacity_open": 10, "capacity_month": 20, "open_matches": 4},
            None,
        ),  # one below max_unfinished = 5
        (
            {"capacity_open": 10, "capacity_month": 20, "open_matches": 5},
            "未完成的匹配过多（5单），完成部分后再派单",
        ),
        ({"capacity_open": 0}, "同时承接已满（0/0）"),
        ({"capacity_month": 0}, "本月名额已满（0/0）"),
    ],
)
def test_resource_exclusion_at_each_limit(changes: dict[str, object], reason: str | None) -> None:
    assert resource_exclusion(resource(**changes)) == reason
    assert eligible(resource(**changes), WHEELCHAIR) == reason


def test_the_anti_hoarding_limit_follows_the_rules() -> None:
    busy = resource(capacity_open=10, capacity_month=20, open_matches=7)
    assert resource_exclusion(busy, rules=Rules(max_unfinished=8)) is None
    assert (
        resource_exclusion(busy, rules=Rules(max_unfinished=7)) == "未完成的匹配过多（7单），完成部分后再派单"
    )
    assert (
        eligible(busy, WHEELCHAIR, rules=Rules(max_unfinished=7))
        == "未完成的匹配过多（7单），完成部分后再派单"
    )
    assert eligible(busy, WHEELCHAIR, rules=Rules(max_unfinished=8)) is None


@pytest.mark.parametrize(("max_unfinished", "scale"), [(0, 15.0), (-1, 15.0), (1, 0.0), (1, -2.0)])
def test_rules_out_of_range_are_refused(max_unfinished: int, scale: float) -> None:
    with pytest.raises(ValueError):
        Rules(max_unfinished=max_unfinished, distance_scale_km=scale)


def test_the_smallest_rules_are_allowed() -> None:
    rules = Rules(max_unfinished=1, distance_scale_km=0.001)
    assert resource_exclusion(resource(), rules=rules) is None
    assert (
        resource_exclusion(resource(open_matches=1), rules=rules)
        == "未完成的匹配过多（1单），完成部分后再派单"
    )


def test_a_deactivated_resource_is_named_as_such_before_anything_else() -> None:
    everything_wrong = resource(active=False, available=False, open_matches=9, month_matches=9)
    assert resource_exclusion(everything_wrong) == "已停用"
    assert resource_exclusion(dataclasses.replace(everything_wrong, active=True)) == "暂不可接单"


# --- town, category, item, amount --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("towns", "wish_town", "reason"),
    [
        ({"虎门镇"}, "虎门镇", None),
        ({"虎门镇"}, "虎门", None),  # the short name of the same town
        ({"虎门镇"}, " 虎门镇 ", None),
        ({"虎门镇"}, "厚街镇", "不服务厚街镇"),
        ({"虎门镇"}, "厚街", "不服务厚街镇"),  # named by its full name in the reason
        (set(), "凤岗镇", None),  # an empty list is the whole city
        ({"全市"}, "凤岗镇", None),
        ({"全市", "虎门镇"}, "凤岗镇", None),
        ({"厚街镇", "长安镇"}, "长安镇", None),
    ],
)
def test_the_town_filter(towns: set[str], wish_town: str, reason: str | None) -> None:
    wish = dataclasses.replace(WHEELCHAIR, town=wish_town)
    assert eligible(resource(towns_served=frozenset(towns)), wish) == reason


@pytest.mark.parametrize(
    ("name", "full"),
    [
        ("虎门", "虎门镇"),
        ("虎门镇", "虎门镇"),
        (" 厚街 ", "厚街镇"),
        ("火星镇", "火星镇"),
        (" 火星 ", "火星"),
    ],
)
def test_town_names(name: str, full: str) -> None:
    assert town_name(name) == full


def test_serves_is_the_whole_city_or_the_listed_towns() -> None:
    assert resource(towns_served=frozenset()).serves("石龙镇") is True
    assert resource(towns_served=frozenset({"全市"})).serves("石龙镇") is True
    assert resource(towns_served=frozenset({"虎门镇"})).serves("石龙镇") is False
    assert resource(towns_served=frozenset({"虎门镇"})).serves("虎门镇") is True


@pytest.mark.parametrize(
    ("categories", "items", "wish", "reason"),
    [
        ({"助残"}, {"轮椅"}, ("助残", "轮椅"), None),
        ({"助残"}, {"轮椅"}, ("助学", None), "不提供助学类帮助"),
        ({"助残"}, {"轮椅"}, ("助残", "拐杖"), "不提供拐杖"),  # lists items of 助残, not this one
        ({"助残"}, set(), ("助残", "拐杖"), None),  # lists none: the whole category
        ({"助残"}, {"轮椅"}, ("助残", None), None),  # "anything in the category"
        ({"助残", "助学"}, {"书籍"}, ("助残", "拐杖"), None),  # its items are 助学's: 助残 in general
        ({"助残", "助医"}, {"助听器"}, ("助残", "拐杖"), "不提供拐杖"),  # 助听器 is a 助残 item too
        ({"助残"}, {"轮椅"}, ("助残", "不在目录里的东西"), "不提供不在目录里的东西"),
        ({"其他"}, set(), ("其他", "不在目录里的东西"), None),
    ],
)
def test_category_and_item(
    categories: set[str], items: set[str], wish: tuple[str, str | None], reason: str | None
) -> None:
    r = resource(categories=frozenset(categories), items=frozenset(items))
    w = dataclasses.replace(WHEELCHAIR, category=wish[0], item=wish[1])
    assert eligible(r, w) == reason
    assert offers_item(r, wish[0], wish[1]) is (reason is None or "类帮助" in reason)


@pytest.mark.parametrize(
    ("max_fund", "amount", "reason"),
    [
        (2000, 1500, None),
        (1500, 1500, None),  # exactly enough
        (1499, 1500, "资助上限1499元，低于所需1500元"),
        (0, 1, "资助上限0元，低于所需1元"),
        (None, 100_000, None),  # no limit
        (500, None, None),  # no amount asked
    ],
)
def test_the_fund_limit(max_fund: int | None, amount: int | None, reason: str | None) -> None:
    donor = resource(categories=frozenset({"助医"}), items=frozenset({"资金"}), max_fund=max_fund)
    wish = Wish(case_id=2, category="助医", item="资金", town="虎门镇", amount=amount)
    assert eligible(donor, wish) == reason
    pool = Pool([donor])
    assert [c.key for c in pool.rank(wish)] == ([] if reason else ["R1"])


def test_the_fund_limit_is_only_for_money() -> None:
    # a resource with a small fund limit still lends a wheelchair, whatever amount a wish carries
    donor = resource(items=frozenset({"轮椅", "资金"}), categories=frozenset({"助残", "助医"}), max_fund=10)
    wish = dataclasses.replace(WHEELCHAIR, amount=5000)
    assert eligible(donor, wish) is None
    assert [c.key for c in Pool([donor]).rank(wish)] == ["R1"]


# --- the indexed pool keeps what eligible keeps -----------------------------------------------------------------

POOL = [
    resource("fits"),
    resource("inactive", active=False),
    resource("unavailable", available=False),
    resource("full-open", open_matches=3),
    resource("full-month", month_matches=6),
    resource("hoarding", capacity_open=10, capacity_month=20, open_matches=5),
    resource("one-below", open_matches=2, month_matches=5),
    resource("elsewhere", towns_served=frozenset({"厚街镇"})),
    resource("city", towns_served=frozenset()),
    resource("city-word", towns_served=frozenset({"全市"})),
    resource("other-category", categories=frozenset({"助学"}), items=frozenset()),
    resource("other-item", items=frozenset({"拐杖"})),
    resource("general", items=frozenset()),
    resource("general-here", items=frozenset({"书籍"}), categories=frozenset({"助残", "助学"})),
    resource("fund-rich", categories=frozenset({"助医"}), items=frozenset({"资金"}), max_fund=5000),
    resource("fund-poor", categories=frozenset({"助医"}), items=frozenset({"资金"}), max_fund=100),
    resource("fund-any", categories=frozenset({"助医"}), items=frozenset({"资金"})),
]

EXPECTED = {
    # wish -> the keys that may be offered it, written by hand from the rules above
    ("助残", "轮椅", "虎门镇", None): {"fits", "one-below", "city", "city-word", "general", "general-here"},
    ("助残", "轮椅", "虎门", None): {"fits", "one-below", "city", "city-word", "general", "general-here"},
    ("助残", "拐杖", "虎门镇", None): {"other-item", "general", "general-here"},
    ("助残", None, "虎门镇", None): {
        "fits",
        "one-below",
        "city",
        "city-word",
        "other-item",
        "general",
        "general-here",
    },
    ("助残", "轮椅", "厚街镇", None): {"elsewhere", "city", "city-word"},
    ("助残", "轮椅", "凤岗镇", None): {"city", "city-word"},
    ("助学", None, "虎门镇", None): {"other-category", "general-here"},
    ("助医", "资金", "虎门镇", 1000): {"fund-rich", "fund-any"},
    ("助医", "资金", "虎门镇", 100): {"fund-rich", "fund-poor", "fund-any"},
    ("助医", "资金", "虎门镇", None): {"fund-rich", "fund-poor", "fund-any"},
    ("助医", "药品", "虎门镇", 1000): set(),
}


@pytest.mark.parametrize("wish_key", list(EXPECTED))
def test_the_pool_and_eligible_keep_exactly_the_expected_resources(
    wish_key: tuple[str, str | None, str, int | None],
) -> None:
    category, item, town, amount = wish_key
    wish = Wish(case_id=3, category=category, item=item, town=town, amount=amount)
    expected = EXPECTED[wish_key]
    assert {r.key for r in POOL if eligible(r, wish) is None} == expected
    pool = Pool(POOL)
    idx, totals = pool.scores(wish)
    assert {pool.resources[i].key for i in idx} == expected
    assert len(totals) == len(idx)
    assert {c.key for c in pool.rank(wish, limit=None)} == expected
    assert set(pool.exclusions(wish)) == {r.key for r in POOL} - expected


def test_a_town_outside_the_city_is_served_only_by_city_wide_resources() -> None:
    wish = dataclasses.replace(WHEELCHAIR, town="广州市")
    pool = Pool(POOL)
    assert {c.key for c in pool.rank(wish, limit=None)} == {"city", "city-word"}
    assert {r.key for r in POOL if eligible(r, wish) is None} == {"city", "city-word"}


@pytest.mark.parametrize(
    ("key", "slots"),
    [
        ("fits", 3),  # 3 open at once, 6 a month, 5 unfinished: 3
        ("one-below", 1),  # 1 more open match, 1 more this month
        ("full-open", 0),
        ("full-month", 0),
        ("inactive", 0),
        ("unavailable", 0),
        ("hoarding", 0),
    ],
)
def test_slots_left_for_a_batch(key: str, slots: int) -> None:
    assert Pool(POOL).remaining(key) == slots


def test_slots_are_capped_by_the_anti_hoarding_limit() -> None:
    big = resource("big", capacity_open=10, capacity_month=20, open_matches=3)
    assert Pool([big]).remaining("big") == 2  # 5 unfinished at most: 2 more
    assert Pool([big], rules=Rules(max_unfinished=4)).remaining("big") == 1
    assert Pool([big], rules=Rules(max_unfinished=20)).remaining("big") == 7  # then the open capacity
    monthly = resource("monthly", capacity_open=10, capacity_month=4, month_matches=3)
    assert Pool([monthly]).remaining("monthly") == 1


# --- categories staff add, and the pool's totals ------------------------------------------------------------------


def test_a_category_outside_the_catalogue_is_offered_in_general() -> None:
    # staff may add categories (model.CATEGORIES); with no catalogue of items, a resource offering the category
    # covers any item of it, and the pool agrees
    farmer = resource("farmer", categories=frozenset({"助农"}), items=frozenset({"轮椅"}))
    listed = resource("listed", categories=frozenset({"助农"}), items=frozenset({"荔枝"}))
    other = resource("other", categories=frozenset({"助残"}), items=frozenset())
    wish = Wish(case_id=4, category="助农", item="荔枝", town="虎门镇")
    assert offers_item(farmer, "助农", "荔枝") is True
    assert eligible(farmer, wish) is None
    assert eligible(listed, wish) is None
    assert eligible(other, wish) == "不提供助农类帮助"
    assert {c.key for c in Pool([farmer, listed, other]).rank(wish, limit=None)} == {"farmer", "listed"}


def test_the_pool_totals_are_the_weighted_means_score_gives() -> None:
    pool = Pool(POOL)
    for wish_key in EXPECTED:
        category, item, town, amount = wish_key
        wish = Wish(case_id=5, category=category, item=item, town=town, amount=amount)
        idx, totals = pool.scores(wish)
        for i, total in zip(idx, totals, strict=True):
            assert 0.0 <= total <= 1.0
            assert total == pytest.approx(score(pool.resources[i], wish).total, abs=1e-9)
