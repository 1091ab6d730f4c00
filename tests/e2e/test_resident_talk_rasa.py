"""The resident's side as people really talk (tests/web/test_resident_talk.py), the same conversations with the real
Rasa server and model understanding them instead of the keyword interpreter: the dialogue must answer the same
whichever reads the message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers import System, running_system
from tests.web.test_resident_talk import *  # noqa: F403 - every conversation of the keyword suite runs here again

pytestmark = pytest.mark.rasa


@pytest.fixture
async def keyword_system(sqlite_url: str, tmp_path: Path, rasa_url: str) -> AsyncIterator[System]:
    """The keyword suite's system, with the real Rasa reachable (the name is the suite's)."""
    async with running_system(sqlite_url, tmp_path, rasa_url=rasa_url) as s:
        yield s
