"""The simulator's application keys and small shared helpers (JSON answers in WeChat's error format)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import jinja2
from aiohttp import web

from wechat_sim.state import SimState, error

log = logging.getLogger("wechat_sim")

SIM_STATE = web.AppKey("sim_state", SimState)
SIM_HTTP = web.AppKey("sim_http", aiohttp.ClientSession)
SIM_JINJA = web.AppKey("sim_jinja", jinja2.Environment)
SIM_TASKS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("sim_tasks")

Handler = Callable[[web.Request, SimState, dict[str, Any]], Awaitable[web.Response]]


def state_of(request: web.Request) -> SimState:
    return request.app[SIM_STATE]


def ok(**extra: Any) -> web.Response:
    return web.json_response({"errcode": 0, "errmsg": "ok", **extra})


def err(errcode: int, detail: str | None = None) -> web.Response:
    # WeChat answers API errors with HTTP 200 and the errcode in the JSON body.
    return web.json_response(error(errcode, detail))


async def apply_fault(state: SimState, endpoint: str) -> web.Response | None:
    """Apply an injected fault: its delay, then its errcode (0 = slowness only)."""
    fault = state.take_fault(endpoint)
    if fault is None:
        return None
    if fault.delay_ms:
        await asyncio.sleep(fault.delay_ms / 1000)
    if fault.errcode:
        log.info("simulated fault on %s: errcode %s", endpoint, fault.errcode)
        return err(fault.errcode)
    return None


async def json_body(request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
    raw = await request.read()
    if not raw.strip():
        return None, err(44002)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, err(47001)
    if not isinstance(body, dict):
        return None, err(47001)
    return body, None


def check_access(state: SimState, request: web.Request) -> web.Response | None:
    code = state.check_token(request.query.get("access_token"))
    return err(code) if code else None


def endpoint(
    counter: str, *, fault: str | None = None, access: bool = False, body: bool = False
) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.Response]]]:
    """The preamble every simulated WeChat API endpoint shares, in WeChat's order: count the call, apply an
    injected fault, check the access token, read the JSON body; the handler gets (request, state, body)."""

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def run(request: web.Request) -> web.Response:
            state = state_of(request)
            state.calls[counter] += 1
            if (resp := await apply_fault(state, fault or counter)) is not None:
                return resp
            if access and (resp := check_access(state, request)) is not None:
                return resp
            data: dict[str, Any] = {}
            if body:
                parsed, bad = await json_body(request)
                if bad is not None or parsed is None:
                    return bad or err(47001)
                data = parsed
            return await handler(request, state, data)

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        return run

    return wrap


async def control_json(request: web.Request) -> dict[str, Any]:
    """The JSON object of a test-control request, or 400."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="body must be JSON") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body
