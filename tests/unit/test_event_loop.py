"""The servers' event loop (bot/ops/eventloop.py, ``EVENT_LOOP``): uvloop by default, the standard loop when asked
for or when uvloop cannot be imported (with a warning), and nothing else accepted."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest
from pydantic import ValidationError

from bot.ops.eventloop import loop_factory, run
from bot.settings import Settings


async def _kind() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_uvloop_is_the_default_and_asyncio_can_be_chosen() -> None:
    assert Settings().event_loop == "uvloop"
    assert run(_kind()) == "uvloop"
    assert run(_kind(), "asyncio") == "asyncio"
    loop = loop_factory("asyncio")()
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()


def test_without_uvloop_the_standard_loop_runs_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    with caplog.at_level(logging.WARNING, logger="bot.ops.eventloop"):
        assert run(_kind(), "uvloop") == "asyncio"
    assert "uvloop is not installed" in caplog.text


def test_an_unknown_event_loop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown event loop"):
        loop_factory("trio")  # type: ignore[arg-type]
    monkeypatch.setenv("EVENT_LOOP", "trio")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("EVENT_LOOP", "asyncio")
    assert Settings().event_loop == "asyncio"
