"""`python -m bot run`: the whole system on one machine — the WeChat simulator, the managed Rasa server and the bot
on SQLite, with demo data — and where to look."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from bot import keys
from bot.app import create_app
from bot.ops.seed import DEMO_STAFF, seed
from bot.settings import Settings

log = logging.getLogger(__name__)
#: The demo runs WeChat's safe mode (AES) end to end; a real deployment sets its own key.
DEMO_AES_KEY = "daguanjiaDemoEncodingAesKey0123456789abcdEF"


async def run_all(settings: Settings, *, host: str, port: int) -> int:
    # lazy: the simulator is loaded only by `python -m bot run`
    from wechat_sim.server import PathOnlyAccessLogger, create_sim_app

    if settings.is_simulated and not settings.wechat_encoding_aes_key:
        settings.wechat_encoding_aes_key = DEMO_AES_KEY
    settings.base_url = f"http://{host}:{port}"
    print("· 准备数据库和演示数据 (database and demo data) …", flush=True)
    print("  ", await seed(settings), flush=True)

    sim = create_sim_app(
        token=settings.wechat_token,
        appid=settings.wechat_appid,
        secret=settings.wechat_secret,
        aes_key=settings.wechat_encoding_aes_key or None,
        mode="safe" if settings.wechat_encoding_aes_key else "plain",
        webhook_url=f"http://{host}:{port}/wechat",
    )
    sim_runner = web.AppRunner(sim, access_log_class=PathOnlyAccessLogger)
    await sim_runner.setup()
    await web.TCPSite(sim_runner, settings.simulator_host, settings.simulator_port).start()

    print("· 启动 Rasa (trains the model the first time; a few minutes) …", flush=True)
    bot_runner = web.AppRunner(create_app(settings), access_log=None)
    await bot_runner.setup()
    await web.TCPSite(bot_runner, host, port).start()

    sim_url = f"http://{settings.simulator_host}:{settings.simulator_port}"
    bot_url = f"http://{host}:{port}"
    accounts = "\n".join(f"      {u:<12} {p:<18} {r}{' · ' + t if t else ''}" for u, r, t, p in DEMO_STAFF)
    guide = ""
    if settings.environment == "development":
        # lazy: the guide reads the demo content, development only
        from bot.ops.demo_guide import demo_pages, demo_qr_codes, guide_text

        try:
            await demo_qr_codes(bot_runner.app[keys.SESSIONS], bot_runner.app[keys.WECHAT])
        except Exception as exc:  # the demo still runs without its QR codes; say why
            print(f"  (社区二维码未生成: {exc})", flush=True)
        passwords = {u: p for u, _r, _t, p in DEMO_STAFF}
        guide = guide_text(await demo_pages(settings), bot_url=bot_url, sim_url=sim_url, passwords=passwords)
    print(
        f"""
大莞家助手 is running.
  工作人员登录 (staff sign-in):  {bot_url}/staff/login
{accounts}
{guide}
  health / readiness:  {bot_url}/healthz  {bot_url}/readyz
  WeChat API calls the bot made (simulator):  {sim_url}/
Press Ctrl-C to stop.""",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("stopping …", flush=True)
    await bot_runner.cleanup()
    await sim_runner.cleanup()
    return 0
