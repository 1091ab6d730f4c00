"""Liveness and readiness. /readyz is 200 while the database answers; NLU or WeChat trouble only sets `degraded`,
so a Rasa outage does not take every worker out of rotation."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot import keys
from bot.db import ping

routes = web.RouteTableDef()


@routes.get("/healthz", name="healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz", name="readyz")
async def readyz(request: web.Request) -> web.Response:
    app = request.app
    checks: dict[str, dict[str, object]] = {}

    try:
        await asyncio.wait_for(ping(app[keys.ENGINE]), timeout=2)
        checks["database"] = {"ok": True, "dialect": app[keys.ENGINE].dialect.name}
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = {"ok": False, "error": type(exc).__name__}

    nlu = app[keys.NLU_CLIENT]
    nlu_ok = await nlu.ready()
    checks["nlu"] = {"ok": nlu_ok, "fallback": "keyword" if getattr(nlu, "degraded", False) or not nlu_ok else None}

    redis = app[keys.REDIS]
    if redis is None:
        checks["redis"] = {"ok": True, "configured": False}
    else:
        try:
            await asyncio.wait_for(redis.ping(), timeout=2)
            checks["redis"] = {"ok": True, "configured": True}
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = {"ok": False, "configured": True, "error": type(exc).__name__}

    wechat = app[keys.WECHAT]
    checks["wechat_api"] = {"ok": not getattr(wechat, "degraded", False), "base": app[keys.SETTINGS].api_base}

    ready = bool(checks["database"]["ok"])
    degraded = not all(bool(c["ok"]) for c in checks.values())
    body = {"ready": ready, "degraded": degraded, "checks": checks}
    return web.json_response(body, status=200 if ready else 503)
