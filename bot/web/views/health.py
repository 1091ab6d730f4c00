"""Liveness and readiness. /readyz is 200 while the database answers; NLU or WeChat trouble only sets `degraded`,
so a Rasa outage does not take every worker out of rotation. Outsiders get only ok / degraded / not_ready; the
checks (API base, last WeChat error) go to loopback callers and holders of the metrics token."""

from __future__ import annotations

import asyncio
import hmac

from aiohttp import web

import webhooks
from bot import keys
from bot.conversation.nlu.replicas import replica_report
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
    checks["nlu"] = {
        "ok": nlu_ok,
        "fallback": "keyword" if getattr(nlu, "degraded", False) or not nlu_ok else None,
    }
    # several Rasa replicas: each one's state, and whether they serve one model
    replicas = replica_report(nlu)
    if replicas is not None:
        checks["nlu"].update(replicas, ok=nlu_ok and replicas["ok"])

    redis = app[keys.REDIS]
    if redis is None:
        checks["redis"] = {"ok": True, "configured": False}
    else:
        try:
            await asyncio.wait_for(redis.ping(), timeout=2)
            checks["redis"] = {"ok": True, "configured": True, "mode": getattr(redis, "mode", "shared")}
        except Exception as exc:  # noqa: BLE001
            # rate limits, nonces and the token lock are per process until Redis answers (bot.sharedstate)
            error = type(exc).__name__
            checks["redis"] = {"ok": False, "configured": True, "error": error, "mode": "per-process"}

    inbound = app.get(webhooks.WEBHOOK_HANDLER)
    journal = getattr(inbound, "journal", None)
    if journal is not None:  # deliveries kept on local disk (database away, or a flood), not yet replayed
        load: dict[str, int] = getattr(inbound, "load", dict)()
        checks["journal"] = {"ok": not journal.pending, "pending": journal.pending, **load}

    wechat = app[keys.WECHAT]
    checks["wechat_api"] = {
        "ok": not wechat.degraded,
        "base": app[keys.SETTINGS].api_base,
        "last_error": wechat.last_error,
    }

    ready = bool(checks["database"]["ok"])
    degraded = not all(bool(c["ok"]) for c in checks.values())
    if not _insider(request):  # outsiders learn only whether to send traffic here, nothing about the inside
        status = "degraded" if degraded else "ok"
        return web.json_response({"status": status if ready else "not_ready"}, status=200 if ready else 503)
    # the loop this worker runs on (EVENT_LOOP: uvloop, or asyncio where uvloop is off or missing)
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    body = {"ready": ready, "degraded": degraded, "checks": checks, "event_loop": loop}
    return web.json_response(body, status=200 if ready else 503)


def _insider(request: web.Request) -> bool:
    """A loopback caller, or one with the metrics token (``Authorization: Bearer <METRICS_TOKEN>``).
    ``request.remote`` is the real client even behind trusted proxies (bot.web.websec.client_address)."""
    token = request.app[keys.SETTINGS].metrics_token
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if hmac.compare_digest(given.encode("utf-8", "replace"), token.encode()):
            return True
    return request.remote in ("127.0.0.1", "::1")


@routes.get("/metrics", name="metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format. With METRICS_TOKEN set a bearer token is required; otherwise loopback callers only."""
    # lazy: only /metrics and /readyz details need these
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from sqlalchemy import func, select  # lazy: as above
    from sqlmodel import col  # lazy: as above

    # lazy: only /metrics and /readyz details need these
    from bot.models import Case, Outbox

    token = request.app[keys.SETTINGS].metrics_token
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode("utf-8", "replace"), token.encode()):
            raise web.HTTPUnauthorized(text="metrics need a token")
    elif request.remote not in ("127.0.0.1", "::1"):
        raise web.HTTPForbidden(text="metrics are served to loopback only unless METRICS_TOKEN is set")

    m = request.app[keys.METRICS]
    now = request.app[keys.CLOCK]()
    finished = ("completed", "closed", "cancelled", "rejected", "merged")
    async with request.app[keys.SESSIONS]() as s:
        for status, n in (
            await s.exec(select(col(Outbox.status), func.count()).group_by(col(Outbox.status)))  # type: ignore[call-overload]
        ).all():
            m.outbox.labels(status).set(n)
        for kind, status, n in (
            await s.exec(  # type: ignore[call-overload]
                select(col(Case.kind), col(Case.status), func.count()).group_by(
                    col(Case.kind), col(Case.status)
                )
            )
        ).all():
            m.cases.labels(kind, status).set(n)
        overdue = (
            await s.exec(  # type: ignore[call-overload]
                select(func.count())
                .select_from(Case)
                .where(col(Case.stage_deadline) < now, col(Case.status).notin_(finished))
            )
        ).scalar_one()
        m.overdue.set(overdue)
    body = generate_latest(m.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
