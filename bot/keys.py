"""Every web.AppKey of the application, in one place (no string keys, no module-level singletons)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import Sessions
from bot.settings import Settings

if TYPE_CHECKING:
    pass

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", Sessions)
HTTP = web.AppKey("http", aiohttp.ClientSession)
NLU_CLIENT = web.AppKey("nlu", "NLU")
REDIS = web.AppKey("redis", Any)  # redis.asyncio.Redis | None
WECHAT = web.AppKey("wechat", Any)  # bot.wechat_api.WeChatAPI
SCHEDULER = web.AppKey("scheduler", Any)  # apscheduler AsyncIOScheduler | None
RASA_PROCESS = web.AppKey("rasa_process", Any)  # bot.rasa_service.RasaProcess | None
TASKS = web.AppKey("tasks", set[asyncio.Task[Any]])
CLOCK = web.AppKey("clock", Any)  # Callable[[], datetime]; injectable in tests
