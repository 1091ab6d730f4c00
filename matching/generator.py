"""A deterministic, realistic 爱心资源库 and stream of wishes for the demo, the tests and the benchmarks.

Same seed → same pool, record for record. About 60% individuals (热心市民), 25% enterprises (爱心企业) and 15%
organisations (社会组织); populous towns and the common categories (生活物资, 助学) get more records.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from matching.model import FUND_ITEM, ITEM_CATALOGUE, Resource, Wish
from reference import towns

DEFAULT_SEED = 20200401

#: Relative weight of each town (population, roughly): the big manufacturing towns and the central districts lead.
TOWN_WEIGHTS: dict[str, float] = {
    "长安镇": 10,
    "虎门镇": 10,
    "东城街道": 9,
    "南城街道": 8,
    "塘厦镇": 8,
    "常平镇": 8,
    "厚街镇": 7,
    "凤岗镇": 6,
    "寮步镇": 6,
    "大朗镇": 6,
    "清溪镇": 5,
    "黄江镇": 4,
    "大岭山镇": 5,
    "万江街道": 5,
    "莞城街道": 4,
    "樟木头镇": 4,
    "石龙镇": 3,
    "石碣镇": 3,
    "茶山镇": 3,
    "石排镇": 3,
    "企石镇": 3,
    "横沥镇": 3,
    "桥头镇": 3,
    "谢岗镇": 2,
    "东坑镇": 3,
    "高埗镇": 3,
    "中堂镇": 3,
    "麻涌镇": 2,
    "望牛墩镇": 2,
    "洪梅镇": 1.5,
    "道滘镇": 2,
    "沙田镇": 2.5,
    "松山湖": 2,
}

#: How often each category is offered by the pool and asked for by wishes.
CATEGORY_WEIGHTS: dict[str, float] = {
    "生活物资": 30,
    "助学": 22,
    "助老": 14,
    "助医": 10,
    "助残": 8,
    "就业帮扶": 6,
    "心理关爱": 5,
    "其他": 5,
}

SURNAMES = "陈李黄张刘林王梁何罗叶钟莫蔡郑谢杨吴周邓袁卢赵徐曾彭朱苏冯方邱刘江潘麦温邝黎"
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华志文俊嘉欣婷浩然子轩雨晴思颖宇航家豪锦荣秋玲永健国辉惠珍"
)
WORDS = (
    "华",
    "鑫",
    "盛",
    "宏",
    "信",
    "达",
    "泰",
    "丰",
    "隆",
    "景",
    "德",
    "恒",
    "兴",
    "裕",
    "安",
    "康",
    "正",
    "海",
    "新",
    "和",
    "源",
    "骏",
    "祥",
    "富",
    "东",
    "南",
    "粤",
    "莞",
    "顺",
    "旺",
)
ENTERPRISE_PATTERNS = (
    "东莞市{a}{b}电子有限公司",
    "东莞{a}{b}实业有限公司",
    "{t}{a}{b}超市",
    "东莞市{a}{b}五金制品厂",
    "{a}{b}酒店",
    "东莞市{a}{b}家电有限公司",
    "{t}{a}{b}药房",
    "东莞{a}{b}物流有限公司",
    "东莞市{a}{b}食品有限公司",
    "{a}{b}百货商场",
    "东莞市{a}{b}科技有限公司",
    "{t}{a}{b}粮油店",
)
ORGANISATION_PATTERNS = (
    "东莞市{a}{b}社工服务中心",
    "{t}{a}{b}志愿者协会",
    "{t}义工联合会{a}{b}分队",
    "东莞市{a}{b}公益服务中心",
    "{t}{a}{b}慈善促进会",
    "东莞市{a}{b}青少年服务中心",
    "{t}{a}{b}长者服务队",
)


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _person(rng: random.Random) -> str:
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(SURNAMES) + given


def _phone(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def _neighbours(home: str, k: int) -> list[str]:
    here = towns.get(home)
    assert here is not None
    others = sorted((t for t in towns.TOWNS if t.name != home), key=lambda t: towns.distance_km(here, t))
    return [t.name for t in others[:k]]


def _categories(rng: random.Random, k: int) -> frozenset[str]:
    chosen: set[str] = set()
    while len(chosen) < k:
        chosen.add(_weighted(rng, CATEGORY_WEIGHTS))
    return frozenset(chosen)


def _items(rng: random.Random, categories: frozenset[str], kind: str) -> frozenset[str]:
    items: set[str] = set()
    for c in sorted(categories):
        if rng.random() < 0.2:  # offers the category in general
            continue
        catalogue = [i for i in ITEM_CATALOGUE[c] if i != FUND_ITEM or kind != "individual"]
        items.update(rng.sample(catalogue, k=min(len(catalogue), rng.randint(1, 3))))
    return frozenset(items)


def generate_pool(*, n: int = 1900, seed: int = DEFAULT_SEED) -> list[Resource]:
    """``n`` resources with keys ``R00001``…; the same seed always gives the same pool."""
    rng = random.Random(seed)
    names_used: set[str] = set()
    out: list[Resource] = []
    for i in range(n):
        roll = rng.random()
        kind = "individual" if roll < 0.60 else "enterprise" if roll < 0.85 else "organisation"
        home = _weighted(rng, TOWN_WEIGHTS)
        short = towns.get(home).short  # type: ignore[union-attr]
        for _attempt in range(20):
            if kind == "individual":
                name = _person(rng)
                break
            pattern = rng.choice(ENTERPRISE_PATTERNS if kind == "enterprise" else ORGANISATION_PATTERNS)
            name = pattern.format(a=rng.choice(WORDS), b=rng.choice(WORDS), t=short)
            if name not in names_used:
                break
        names_used.add(name)
        if kind == "individual":
            cats = _categories(rng, rng.choices((1, 2, 3), weights=(60, 32, 8))[0])
            served = {home} | set(_neighbours(home, rng.choice((0, 0, 0, 1, 2))))
            cap_open = rng.choice((1, 1, 2, 2, 3))
            cap_month = cap_open + rng.randint(1, 3)
        elif kind == "enterprise":
            cats = _categories(rng, rng.choices((1, 2, 3), weights=(45, 40, 15))[0])
            served = set() if rng.random() < 0.2 else {home} | set(_neighbours(home, rng.randint(0, 3)))
            cap_open = rng.randint(2, 10)
            cap_month = cap_open * rng.randint(2, 3)
        else:
            cats = _categories(rng, rng.choices((2, 3, 4), weights=(40, 40, 20))[0])
            served = {home} | set(_neighbours(home, rng.randint(1, 4)))
            if rng.random() < 0.05:
                served = set()
            cap_open = rng.randint(3, 8)
            cap_month = cap_open * 2 + rng.randint(0, 4)
        items = _items(rng, cats, kind)
        # History: a quarter are newcomers; the rest have answered a few offers.
        offers = 0 if rng.random() < 0.25 else rng.randint(1, 30 if kind != "individual" else 12)
        accept_p = rng.uniform(0.4, 0.95)
        accepts = sum(rng.random() < accept_p for _ in range(offers))
        timeouts = sum(rng.random() < 0.3 for _ in range(offers - accepts))
        declines = offers - accepts - timeouts
        open_matches = min(accepts, rng.choice((0, 0, 0, 1, 1, 2)), cap_open)
        completions = max(
            0, accepts - open_matches - (1 if rng.random() < 0.15 and accepts > open_matches else 0)
        )
        rating_count = sum(rng.random() < 0.6 for _ in range(completions))
        rating_sum = float(sum(rng.choice((3, 4, 4, 5, 5, 5)) for _ in range(rating_count)))
        month_matches = min(cap_month, open_matches + rng.choice((0, 0, 1)))
        recent_load = float(min(accepts, month_matches + rng.choice((0, 0, 1, 2))))
        out.append(
            Resource(
                key=f"R{i + 1:05d}",
                kind=kind,
                name=name,
                contact=name if kind == "individual" else _person(rng),
                phone=_phone(rng),
                categories=cats,
                items=items,
                home_town=home,
                towns_served=frozenset(served),
                capacity_open=cap_open,
                capacity_month=cap_month,
                open_matches=open_matches,
                month_matches=month_matches,
                available=rng.random() < 0.92,
                active=rng.random() < 0.96,
                offers=offers,
                accepts=accepts,
                declines=declines,
                timeouts=timeouts,
                completions=completions,
                rating_sum=rating_sum,
                rating_count=rating_count,
                recent_load=recent_load,
                max_fund=rng.choice((500, 1000, 2000, 5000)) if FUND_ITEM in items else None,
            )
        )
    return out


def generate_wishes(
    *, n: int, seed: int = DEFAULT_SEED + 1, start: datetime = datetime(2024, 3, 1, tzinfo=UTC)
) -> list[Wish]:
    """``n`` open wishes (case ids ``W000001``…) spread over towns and categories like real demand."""
    rng = random.Random(seed)
    out: list[Wish] = []
    for i in range(n):
        category = _weighted(rng, CATEGORY_WEIGHTS)
        item = None if rng.random() < 0.15 else rng.choice(ITEM_CATALOGUE[category])
        out.append(
            Wish(
                case_id=f"W{i + 1:06d}",
                category=category,
                town=_weighted(rng, TOWN_WEIGHTS),
                item=item,
                created_at=start + timedelta(minutes=7 * i + rng.randint(0, 6)),
                amount=rng.choice((300, 800, 1500, 3000)) if item == FUND_ITEM else None,
            )
        )
    return out
