"""CPU of one unit of work with the resident's lock on PostgreSQL, by the way ``bot.db.transaction`` runs it.

    python -m benchmarks.units [--units 2000] [--rounds 3]

Each unit begins with the lock, reads one resident's id by openid (a statement marked ``on_driver``) and commits, in
turn (one at a time, on one event loop, uvloop): on a held connection (``bot/lanes.py``, the common case), on a
connection borrowed from the pool for the unit (every held connection busy), and through the ORM session with
``begin_locked`` (what a unit past the held connections took before, and what it still takes when no connection can
be borrowed). Printed: µs of process CPU per unit, each way, the best of ``--rounds`` rounds (the ways alternate
within a round, so a change in the machine's speed touches all three). A fresh database on 127.0.0.1:5432, migrated, dropped
at the end. The last line is JSON."""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select

from benchmarks.full import _database
from bot.db import make_engine, make_sessions, migrate, release, transaction
from bot.driver import on_driver
from bot.models import Resident
from bot.ops import eventloop

_RESIDENTS = Resident.__table__  # type: ignore[attr-defined]
_READ = on_driver(select(_RESIDENTS.c.id).where(_RESIDENTS.c.openid == bindparam("openid")))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _units(sessions: Any, n: int) -> float:
    """µs of CPU per unit over ``n`` units."""
    started = _cpu()
    for i in range(n):
        async with transaction(sessions, lock=f"resident:obench-unit-{i % 50}") as session:
            await session.exec(_READ, params={"openid": f"obench-unit-{i % 50}"})
    return (_cpu() - started) / n * 1e6


async def run(*, units: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with _database("postgresql", Path(tmp)) as url:
            await migrate(url)
            return await _measure(url, units=units, rounds=rounds)


async def _measure(url: str, *, units: int, rounds: int) -> dict[str, float]:
    engine = make_engine(url)
    sessions = make_sessions(engine)
    lanes = sessions.lanes  # type: ignore[attr-defined]
    best: dict[str, float] = {}
    try:
        await _units(sessions, 100)  # warm: connections opened, statements prepared
        for _ in range(rounds):
            measured = {"held": await _units(sessions, units)}
            taken = [await lanes.take() for _ in range(lanes.limit)]  # every held connection busy
            measured["borrowed"] = await _units(sessions, units)
            sessions.lanes = None  # as when no connection can be borrowed: the session with begin_locked
            measured["session"] = await _units(sessions, units)
            sessions.lanes = lanes
            for lane in taken:
                lanes.give_back(lane)
            print("  ".join(f"{way} {us:.1f} µs" for way, us in measured.items()))
            for way, us in measured.items():
                best[way] = min(best.get(way, us), us)
    finally:
        sessions.lanes = lanes
        await release(sessions)
        await engine.dispose()
    return {way: round(us, 1) for way, us in best.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.units", description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    result = eventloop.run(run(units=args.units, rounds=args.rounds), "uvloop")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
