"""The flood benchmark stays runnable: a short load through a real bot process, its drain read from /readyz, and
its audit finds every message once."""

from __future__ import annotations

import pytest

from benchmarks.flood import flood


@pytest.mark.slow  # a child bot process and a few seconds of load
async def test_a_small_flood_is_answered_drained_and_audited() -> None:
    result = await flood(rate=30, seconds=1.0, database_url=None, timeout=60)
    assert result["sent"] == 30
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["drain_s"] < 60 and result["errors"] == 0
