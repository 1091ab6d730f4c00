"""The staff pages benchmark measures what it says: its cases sit in their town's registry communities (by id, as
the app files them), and the queue variant "filtered by a community" sends the id the queue filters by, so the
filtered page lists only that community's cases. Runs the benchmark's own seed and measurement with a tiny load
on a SQLite file."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from benchmarks.staff_pages import community_filter, measure, seed
from bot.db import make_engine


async def test_the_community_variant_filters_the_queue_by_a_registry_id(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bench.sqlite3'}"
    await seed(url, 3000)
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            stray = (
                await conn.execute(
                    text(
                        'SELECT COUNT(*) FROM "case" c LEFT JOIN community m ON m.id = c.community_id '
                        "WHERE m.id IS NULL OR m.town != c.town OR m.name != c.community"
                    )
                )
            ).scalar_one()
            assert stray == 0  # every case names a community of its own town, by id and name
            params = await community_filter(conn, "虎门镇")
            town, n = (
                await conn.execute(
                    text(
                        'SELECT m.town, COUNT(c.id) FROM community m JOIN "case" c ON c.community_id = m.id '
                        "WHERE m.id = :id GROUP BY m.town"
                    ),
                    {"id": int(params["community"])},
                )
            ).one()
        assert town == "虎门镇" and n > 0
    finally:
        await engine.dispose()
    # the measurement itself checks that the filtered queue lists only that community's cases before timing
    result = await measure(url, 4)
    assert result["queue_p50_ms"] > 0 and result["case_p50_ms"] > 0
