"""Pushing to the bot's webhook as WeChat does: signed (and encrypted) XML, 5 s per try, up to 3 tries."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from wechat_sim import protocol
from wechat_sim.client import read_reply
from wechat_sim.keys import log
from wechat_sim.state import SimState


async def deliver(state: SimState, session: aiohttp.ClientSession, xml: str, openid: str) -> dict[str, Any]:
    """POST one message to the webhook like WeChat: signed (and encrypted) in the configured mode, 5 s per try,
    up to 3 tries on timeout or connection failure, the same request each time. Returns what the phone shows."""
    params, body = protocol.build_request(
        xml,
        mode=state.mode,
        token=state.token,
        timestamp=int(state.now()),
        nonce=protocol.new_nonce(),
        openid=openid,
        appid=state.appid,
        aes_key=state.aes_key,
    )
    timeout = aiohttp.ClientTimeout(total=state.reply_timeout)
    outcome: dict[str, Any] = {"tries": 0, "status": None, "reply": None, "msg_type": None, "error": None}
    for attempt in range(1, state.reply_tries + 1):
        outcome["tries"] = attempt
        started = time.monotonic()
        try:
            async with session.post(
                state.webhook_url,
                params=params,
                data=body,
                headers={"Content-Type": "text/xml"},
                timeout=timeout,
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            outcome["error"] = "timeout" if isinstance(exc, TimeoutError) else f"connection: {exc}"
            log.info("webhook try %s failed: %s", attempt, outcome["error"])
            continue
        state.webhook_log.append(
            {"openid": openid, "status": status, "ms": round((time.monotonic() - started) * 1000, 1)}
        )
        reply = read_reply(status, raw, token=state.token, appid=state.appid, aes_key=state.aes_key)
        outcome |= {"status": status, "reply": reply.text, "msg_type": reply.msg_type, "error": reply.error}
        if status != 200:
            outcome["error"] = f"HTTP {status}"
        return outcome
    return outcome
