"""How a server process runs: what it does before it serves (``settle``), and its event loop: uvloop (``EVENT_LOOP=uvloop``, the default) or the standard library's.

A webhook message on PostgreSQL is three round trips to the database and one HTTP exchange; each is a wake-up of the
loop, a read, a callback and a write. uvloop does that work in C (libuv): asyncpg's own round trip costs about half
the CPU it costs on the standard loop (benchmarks/README.md). Where uvloop is not installed (it has no Windows build)
or ``EVENT_LOOP=asyncio`` is set, the standard loop runs, with the same behaviour."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
LoopName = Literal["uvloop", "asyncio"]


def loop_factory(name: LoopName = "uvloop") -> Callable[[], asyncio.AbstractEventLoop]:
    """A new loop of the kind ``name``; the standard one when uvloop is asked for and cannot be imported."""
    if name not in ("uvloop", "asyncio"):
        raise ValueError(f"unknown event loop {name!r}: uvloop or asyncio")
    if name == "uvloop":
        try:
            # lazy: an optional dependency (no Windows build); the standard loop stands in without it
            import uvloop
        except ImportError:
            log.warning("EVENT_LOOP=uvloop but uvloop is not installed: running on the standard event loop")
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], name: LoopName = "uvloop") -> T:
    """``asyncio.run(main)`` on a loop of the kind ``name``."""
    with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
        return runner.run(main)


def settle() -> None:
    """Before serving, once the app is built: the modules, mappers and templates loaded so far live as long as the
    process, so they are moved out of the collector's reach (``gc.freeze``) and a full collection no longer walks
    them (30-90 ms of a 100,000-case sweep went to one, benchmarks/README.md). ``python -m bot serve`` and the
    benchmarks' bot servers both do it."""
    gc.collect()
    gc.freeze()
