"""Background work of one app: every task is referenced until it ends and awaited on shutdown (``app[keys.TASKS]``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from aiohttp import web

from bot import keys


def spawn(app: web.Application, coro: Awaitable[object]) -> asyncio.Task[object]:
    """A background task whose reference is kept until it finishes (and awaited on shutdown)."""
    task: asyncio.Task[object] = asyncio.ensure_future(coro)
    app[keys.TASKS].add(task)
    task.add_done_callback(app[keys.TASKS].discard)
    return task
