"""Every web.AppKey of the application, in one place (no string keys, no module-level singletons)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.conversation.nlu import NLU
from bot.db import InlineEngine, Sessions
from bot.ops.metrics import Metrics
from bot.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", Sessions)
#: the webhook's conversation: on SQLite an engine whose short statements run on the loop's thread
#: (bot.db.InlineEngine); elsewhere the same engine and sessions as ENGINE/SESSIONS
CHAT_ENGINE: web.AppKey[AsyncEngine | InlineEngine] = web.AppKey("chat_engine")
CHAT_SESSIONS = web.AppKey("chat_sessions", Sessions)
HTTP = web.AppKey("http", aiohttp.ClientSession)
NLU_CLIENT: web.AppKey[NLU] = web.AppKey("nlu")
REDIS: web.AppKey[Any] = web.AppKey("redis")  # redis.asyncio.Redis | None
WECHAT: web.AppKey[Any] = web.AppKey("wechat")  # bot.delivery.wechat_api.WeChatAPI
SCHEDULER: web.AppKey[Any] = web.AppKey("scheduler")  # apscheduler AsyncIOScheduler | None
RASA_PROCESS: web.AppKey[Any] = web.AppKey("rasa_process")  # bot.ops.rasa_service.RasaProcess | None
TASKS = web.AppKey("tasks", set[asyncio.Task[Any]])
CLOCK: web.AppKey[Any] = web.AppKey("clock")  # Callable[[], datetime]; injectable in tests
METRICS = web.AppKey("metrics", Metrics)
SMS: web.AppKey[Any] = web.AppKey("sms")  # bot.delivery.sms.SmsProvider | None
#: sends what the outbox holds now (bot.ops.scheduler.dispatch_now), for packages below the process layer
DISPATCH_NOW: web.AppKey[Any] = web.AppKey("dispatch_now")
#: rate limiters made on first use (Redis is connected after the app is built), by name
LIMITERS: web.AppKey[dict[str, Any]] = web.AppKey("limiters")
#: the media store and what downloading from WeChat needs (bot.media.MediaDeps)
MEDIA: web.AppKey[Any] = web.AppKey("media")
