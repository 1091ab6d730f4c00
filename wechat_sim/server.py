"""The WeChat simulator as an aiohttp app: WeChat's API endpoints the bot calls (``api``), fault injection and
recording (``controls``), and the resident "phone" page that talks to the bot's webhook exactly as WeChat does
(``phone``, ``push``).

    python -m bot simulator --port 8090 --webhook-url http://127.0.0.1:8080/wechat
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from wechat_sim import api, controls, media, phone, protocol, qrcodes, sms
from wechat_sim.keys import SIM_HTTP, SIM_JINJA, SIM_STATE, SIM_TASKS
from wechat_sim.phone import UNAVAILABLE
from wechat_sim.push import deliver
from wechat_sim.state import SentMessage, SimState

log = logging.getLogger(__name__)


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    session = aiohttp.ClientSession()
    app[SIM_HTTP] = session
    app[SIM_TASKS] = set()
    yield
    pending = app[SIM_TASKS]
    tasks = list(pending)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()


def create_sim_app(
    *,
    token: str,
    appid: str,
    aes_key: str | None,
    mode: str,
    webhook_url: str,
    secret: str,
    enforce_window: bool = False,
    reply_timeout: float = 5.0,
    clock: Callable[[], float] = time.time,
    templates: dict[str, tuple[str, ...]] | None = None,
    template_job_events: bool = False,
) -> web.Application:
    """The simulator app; its ``SimState`` is ``app[SIM_STATE]``."""
    if mode not in protocol.MODES:
        raise ValueError(f"mode must be one of {protocol.MODES}")
    if mode != "plain":
        if not aes_key:
            raise ValueError(f"mode {mode!r} needs an EncodingAESKey")
        protocol.aes_key_bytes(aes_key)
    app = web.Application()
    app[SIM_STATE] = SimState(
        token=token,
        appid=appid,
        secret=secret,
        aes_key=aes_key or None,
        mode=mode,
        webhook_url=webhook_url,
        enforce_window=enforce_window,
        reply_timeout=reply_timeout,
        templates=templates,
        template_job_events=template_job_events,
        clock=clock,
    )
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("wechat_sim", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        app_key=SIM_JINJA,
    )
    app.cleanup_ctx.append(_http_session)
    app.add_routes(api.routes)
    app.add_routes(controls.routes)
    app.add_routes(media.routes)
    app.add_routes(phone.routes)
    app.add_routes(sms.routes)
    app.add_routes(qrcodes.routes)
    app[qrcodes.SIM_QRCODES] = {}
    app[sms.SIM_SMS] = sms.SmsState(clock=clock)
    app.router.add_static("/static/", os.path.join(os.path.dirname(__file__), "static"), name="static")
    return app


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without query strings: they carry the AppSecret, access tokens and OAuth codes."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.1fms", request.method, request.path, response.status, time * 1000)


def main(argv: list[str] | None = None) -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m bot simulator", description="WeChat simulator")
    parser.add_argument("--host", default=env("SIMULATOR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("SIMULATOR_PORT", "8090")))
    parser.add_argument("--webhook-url", default=env("SIMULATOR_WEBHOOK_URL", "http://127.0.0.1:8080/wechat"))
    parser.add_argument("--token", default=env("WECHAT_TOKEN", "daguanjia-dev-token"))
    parser.add_argument("--appid", default=env("WECHAT_APPID", "wx00000000simulator"))
    parser.add_argument("--secret", default=env("WECHAT_SECRET", "simulator-secret"))
    parser.add_argument("--aes-key", default=env("WECHAT_ENCODING_AES_KEY", ""))
    parser.add_argument(
        "--mode", choices=protocol.MODES, default=None, help="default: safe with a key, else plain"
    )
    parser.add_argument("--enforce-window", action="store_true", help="enforce the 48-hour window and quota")
    args = parser.parse_args(argv)
    mode = args.mode or ("safe" if args.aes_key else "plain")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_sim_app(
        token=args.token,
        appid=args.appid,
        aes_key=args.aes_key or None,
        mode=mode,
        webhook_url=args.webhook_url,
        secret=args.secret,
        enforce_window=args.enforce_window,
    )
    print(f"WeChat simulator on http://{args.host}:{args.port}/  phone: http://{args.host}:{args.port}/phone")
    print(f"  webhook {args.webhook_url} ({mode} mode)")
    web.run_app(app, host=args.host, port=args.port, print=None, access_log_class=PathOnlyAccessLogger)


__all__ = ["SIM_STATE", "UNAVAILABLE", "SentMessage", "SimState", "create_sim_app", "deliver", "main"]


if __name__ == "__main__":
    main()
