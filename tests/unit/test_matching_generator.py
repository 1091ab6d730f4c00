"""The deterministic demo pool: same seed, same pool; a realistic mix."""

from __future__ import annotations

import re
from collections import Counter

from matching.generator import generate_pool, generate_wishes
from matching.model import CATEGORIES, ITEM_CATALOGUE
from reference import towns


def test_same_seed_same_pool_and_other_seed_other_pool() -> None:
    assert generate_pool(n=200) == generate_pool(n=200)
    assert generate_pool(n=200) != generate_pool(n=200, seed=1)
    assert generate_wishes(n=50, seed=3) == generate_wishes(n=50, seed=3)


def test_the_pool_looks_like_the_programme() -> None:
    pool = generate_pool()
    assert len(pool) == 1900
    assert len({r.key for r in pool}) == 1900
    kinds = Counter(r.kind for r in pool)
    assert abs(kinds["individual"] / 1900 - 0.60) < 0.05
    assert abs(kinds["enterprise"] / 1900 - 0.25) < 0.04
    assert abs(kinds["organisation"] / 1900 - 0.15) < 0.04
    assert all(re.fullmatch(r"1[3-9]\d{9}", r.phone) for r in pool)
    assert all(towns.get(r.home_town) is not None for r in pool)
    assert all(r.towns_served <= set(towns.TOWN_NAMES) for r in pool)
    assert all(r.categories and r.categories <= set(CATEGORIES) for r in pool)
    all_items = {i for items in ITEM_CATALOGUE.values() for i in items}
    assert all(r.items <= all_items for r in pool)
    homes = Counter(r.home_town for r in pool)
    assert min(homes["长安镇"], homes["虎门镇"], homes["东城街道"]) > 2 * max(
        homes["洪梅镇"], homes["麻涌镇"]
    )
    cats = Counter(c for r in pool for c in r.categories)
    assert {c for c, _ in cats.most_common(2)} == {"生活物资", "助学"}
    assert any(r.city_wide for r in pool if r.kind == "enterprise")
    assert not any(r.city_wide for r in pool if r.kind == "individual")
    enterprise_names = [r.name for r in pool if r.kind == "enterprise"]
    assert any(n.endswith("有限公司") for n in enterprise_names) and any(
        n.endswith("超市") for n in enterprise_names
    )
    assert any(r.name.endswith(("社工服务中心", "志愿者协会")) for r in pool if r.kind == "organisation")
    individuals = [r for r in pool if r.kind == "individual"]
    assert all(2 <= len(r.name) <= 3 and r.contact == r.name for r in individuals)
    assert any(r.offers == 0 for r in pool) and any(r.rating_count > 0 for r in pool)
    assert all(r.accepts + r.declines + r.timeouts == r.offers for r in pool)
    assert all(r.open_matches <= r.capacity_open and r.completions <= r.accepts for r in pool)


def test_wishes_are_spread_over_towns_and_categories() -> None:
    wishes = generate_wishes(n=2000)
    assert len({w.case_id for w in wishes}) == 2000
    assert len({w.town for w in wishes}) == 33
    cats = Counter(w.category for w in wishes)
    assert cats.most_common(1)[0][0] == "生活物资"
    assert all(w.item is None or w.item in ITEM_CATALOGUE[w.category] for w in wishes)
    assert all(w.created_at is not None for w in wishes)
    assert all((w.amount is not None) == (w.item == "资金") for w in wishes)


def test_the_engine_stays_pure_domain_code() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, matching, matching.batch, matching.cascade, matching.generator, matching.pool_io; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'aiohttp', 'sqlmodel', 'sqlalchemy'} "
        "or (m.startswith('bot.') and m != 'reference.towns')); print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == ""
