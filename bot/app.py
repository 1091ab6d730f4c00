"""The app factory: one `create_app(settings)` for the server, the CLI and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from sqlalchemy.ext.asyncio import AsyncEngine

import webhooks
from bot import keys
from bot.api.http import create_api_app
from bot.api.open311 import create_open311_app
from bot.background import spawn
from bot.db import InlineEngine, make_engine, make_sessions, migrate, release
from bot.media import MediaDeps, make_storage, sweep_forever
from bot.models import utcnow
from bot.ops.metrics import Metrics
from bot.ops.scheduler import dispatch_now, scheduler_ctx
from bot.settings import Settings
from bot.web.menu import staff_menu
from bot.web.params import ParamError
from bot.web.views import (
    admin,
    api_admin,
    calltasks,
    charts,
    communities,
    donors,
    erasure,
    gov,
    health,
    leads,
    league,
    media,
    oversight,
    pool,
    projects,
    public,
    public_projects,
    query,
    resident,
    site,
    sms_callback,
    staff,
    stats,
    survey,
    volunteer,
    wall,
    warnings,
)
from bot.web.websec import FILTERS as TEMPLATE_FILTERS
from bot.web.websec import client_address, csrf_context, security_headers

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent


class _TemplateCodeCache(jinja2.BytecodeCache):
    """Compiled templates kept for the life of the process, keyed by name and checked against the source's hash
    (Jinja's buckets), so every app built in one process (the test suite builds thousands) compiles a template once."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_TEMPLATE_CODE = _TemplateCodeCache()


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    run_migrations: bool = True,
    with_scheduler: bool | None = None,
) -> web.Application:
    app = web.Application(
        client_max_size=max(settings.wechat_max_body, 8 * 1024 * 1024),
        middlewares=[client_address, security_headers, error_pages],
    )
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock
    app[keys.TASKS] = set()
    app[keys.METRICS] = Metrics()
    app[keys.LIMITERS] = {}
    app[keys.DISPATCH_NOW] = dispatch_now  # lower packages send a late message at once through this

    setup_session(app, _session_storage(settings))
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "web" / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        context_processors=[csrf_context, aiohttp_jinja2.request_processor],
        bytecode_cache=_TEMPLATE_CODE,
    )
    env.filters.update(TEMPLATE_FILTERS)
    env.globals["staff_menu"] = staff_menu  # the staff layout's menu, by role

    app.cleanup_ctx.append(_database(run_migrations))
    app.cleanup_ctx.append(_http)
    app.cleanup_ctx.append(_redis)
    if settings.rasa_managed and settings.environment != "test":
        app.cleanup_ctx.append(_managed_rasa)
    app.cleanup_ctx.append(_nlu)
    app.cleanup_ctx.append(_wechat)
    app.cleanup_ctx.append(_media)
    app.cleanup_ctx.append(_sms)
    app.cleanup_ctx.append(_webhook)
    app.cleanup_ctx.append(webhooks.webhook_tasks_ctx)
    if settings.scheduler_enabled if with_scheduler is None else with_scheduler:
        app.cleanup_ctx.append(scheduler_ctx)
    app.cleanup_ctx.append(_background_tasks)

    app.router.add_routes(webhooks.routes)
    for module in (
        health,
        site,
        staff,
        calltasks,
        sms_callback,
        resident,
        query,
        admin,
        api_admin,
        pool,
        volunteer,
        survey,
        public,
        stats,
        charts,
        communities,
        gov,
        league,
        projects,
        public_projects,
        oversight,
        wall,
        donors,
        leads,
        media,
        warnings,
        erasure,
    ):
        app.router.add_routes(module.routes)
    app.router.add_static("/static", HERE / "web" / "static", name="static")
    app.add_subapp("/api", create_api_app(calls_per_minute=settings.api_calls_per_minute))
    app.add_subapp("/open311/v2", create_open311_app())
    return app


def _session_storage(settings: Settings) -> EncryptedCookieStorage:
    # lazy: loaded by the cleanup context that uses it, so building an app for a test loads only what it starts
    import hashlib

    key = hashlib.sha256(settings.session_secret.encode()).digest()  # 32 bytes; the storage base64-encodes it
    return EncryptedCookieStorage(
        key,
        cookie_name="dgj_session",
        httponly=True,
        secure=settings.cookie_secure,
        samesite="Lax",
        max_age=12 * 3600,
    )


# ------------------------------------------------------------------ cleanup contexts, in dependency order
def _database(run_migrations: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[keys.SETTINGS]
        if run_migrations:
            await migrate(settings.db_url)
        engine = make_engine(settings.db_url, **settings.db_pool)
        app[keys.ENGINE] = engine
        app[keys.SESSIONS] = make_sessions(engine)
        chat: AsyncEngine | InlineEngine = engine
        if (
            engine.dialect.name == "sqlite"
            and settings.sqlite_inline_chat
            and ":memory:" not in settings.db_url
        ):
            chat = InlineEngine(settings.db_url)
        app[keys.CHAT_ENGINE] = chat
        app[keys.CHAT_SESSIONS] = (
            make_sessions(chat, like=app[keys.SESSIONS]) if chat is not engine else app[keys.SESSIONS]
        )
        yield
        await release(app[keys.SESSIONS])  # the connections the webhook held, back to the pool
        if chat is not engine:
            await chat.dispose()
        await engine.dispose()

    return ctx


async def _http(app: web.Application) -> AsyncIterator[None]:
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    app[keys.HTTP] = session
    yield
    await session.close()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    url = app[keys.SETTINGS].redis_url
    if not url:
        app[keys.REDIS] = None
        yield
        return
    # lazy: loaded by the cleanup context that uses it, so building an app for a test loads only what it starts
    import redis.asyncio as aioredis

    # lazy: loaded by the cleanup context that uses it, so building an app for a test loads only what it starts
    from bot.sharedstate import DegradableRedis

    client = aioredis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    # Redis away: per-process rate limits, nonces and token lock (said in /readyz) until it answers again
    shared = DegradableRedis(client)
    app[keys.REDIS] = shared
    yield
    await shared.aclose()


async def _managed_rasa(app: web.Application) -> AsyncIterator[None]:
    # lazy: loaded by the cleanup context that uses it, so building an app for a test loads only what it starts
    from bot.ops.rasa_service import RasaProcess, train_if_needed

    settings = app[keys.SETTINGS]
    model = await asyncio.to_thread(
        train_if_needed,
        project_dir=settings.nlu_project_dir,
        models_dir=settings.nlu_project_dir / "models",
        rasa_bin=settings.rasa_bin,
    )
    proc = RasaProcess(
        rasa_bin=settings.rasa_bin,
        model=model,
        port=settings.rasa_port,
        token=settings.rasa_token,
    )
    await proc.start()
    app[keys.RASA_PROCESS] = proc
    yield
    await proc.stop()


async def _nlu(app: web.Application) -> AsyncIterator[None]:
    # lazy: loaded by the cleanup context that uses it, so building an app for a test loads only what it starts
    from bot.conversation.nlu import FallbackNLU, KeywordNLU, RasaNLU
    from bot.conversation.nlu.cache import CachedNLU  # lazy: as above
    from bot.conversation.nlu.replicas import RasaReplicas  # lazy: as above

    settings = app[keys.SETTINGS]
    rasa: RasaNLU | RasaReplicas
    if len(settings.rasa_bases) > 1:  # several replicas: the bot spreads the parses over them
        rasa = RasaReplicas.from_urls(
            settings.rasa_bases,
            token=settings.rasa_token,
            session=app[keys.HTTP],
            timeout=settings.rasa_timeout,
            retry_after=settings.rasa_replica_retry,
        )
    else:
        rasa = RasaNLU(
            base_url=settings.rasa_base,
            token=settings.rasa_token,
            session=app[keys.HTTP],
            timeout=settings.rasa_timeout,
        )
    # repeated short texts (menu digits, 查询进度, 确认, greetings) are answered from a cache of this model's parses
    cached = CachedNLU(rasa, max_entries=settings.nlu_cache_size, refresh=settings.nlu_cache_refresh)
    app[keys.NLU_CLIENT] = FallbackNLU(primary=cached, fallback=KeywordNLU())
    # before the worker takes traffic, off the loop (once per process; later apps find the tokenizers loaded)
    await asyncio.get_running_loop().run_in_executor(None, _warm_reading)
    yield


def _warm_reading() -> None:
    """The case reading's dictionaries (jieba's words with the project's own, and their part-of-speech tags) load on
    first use, 1-2 s of CPU: loaded at start, before the worker serves, so the first resident who names a thing does
    not wait for them, nor does every message behind theirs. Once per process (the tokenizers are module-level)."""
    # lazy: loaded by the cleanup context that uses it, as the NLU clients above
    from bot.conversation.dialogue.slots import read_beneficiary, read_items

    sample = "想帮阿妈申请一部轮椅同埋一张护理床"
    read_items(sample, [], wish=True)
    read_beneficiary(sample, None)


async def _media(app: web.Application) -> AsyncIterator[None]:
    """The media store (a folder, or an S3-compatible bucket) and what downloading from WeChat needs."""
    settings = app[keys.SETTINGS]
    app[keys.MEDIA] = MediaDeps(
        sessions=app[keys.SESSIONS],
        storage=make_storage(settings),
        wechat=app[keys.WECHAT],
        settings=settings,
        clock=app[keys.CLOCK],
        tasks=app[keys.TASKS],
    )
    # the periodic download sweep runs wherever the other sweeps run (rows are claimed: several workers are safe)
    sweeper = asyncio.create_task(sweep_forever(app[keys.MEDIA])) if settings.scheduler_enabled else None
    yield
    if sweeper is not None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper


async def _wechat(app: web.Application) -> AsyncIterator[None]:
    # lazy: loaded by the cleanup context that uses it, so building an app for a test loads only what it starts
    from bot.delivery.wechat_api import WeChatAPI

    settings = app[keys.SETTINGS]
    app[keys.WECHAT] = WeChatAPI(
        session=app[keys.HTTP],
        base_url=settings.api_base,
        appid=settings.wechat_appid,
        secret=settings.wechat_secret,
        redis=app[keys.REDIS],
        clock=app[keys.CLOCK],
    )
    yield


async def _sms(app: web.Application) -> AsyncIterator[None]:
    # lazy: loaded by the cleanup context that uses it, so building an app for a test loads only what it starts
    from bot.delivery.sms import make_provider

    app[keys.SMS] = make_provider(app[keys.SETTINGS], session=app[keys.HTTP], clock=app[keys.CLOCK])
    yield


async def _webhook(app: web.Application) -> AsyncIterator[None]:
    # lazy: loaded by the cleanup context that uses it, so building an app for a test loads only what it starts
    from bot.conversation.inbound import Inbound

    settings = app[keys.SETTINGS]
    app[webhooks.WEBHOOK_CONFIG] = webhooks.WebhookConfig(
        token=settings.wechat_token,
        appid=settings.wechat_appid,
        aes_key=settings.wechat_encoding_aes_key or None,
        max_clock_skew=settings.wechat_max_clock_skew,
        reply_budget=settings.wechat_reply_budget,
        max_body=settings.wechat_max_body,
    )
    redis = app[keys.REDIS]
    app[webhooks.WEBHOOK_NONCES] = webhooks.RedisNonceStore(redis) if redis else webhooks.MemoryNonceStore()
    inbound = Inbound(app)
    app[webhooks.WEBHOOK_HANDLER] = inbound
    if inbound.journal.pending:  # deliveries journalled while the database was away, before a restart
        inbound.start()
    yield
    await inbound.stop()


async def _background_tasks(app: web.Application) -> AsyncIterator[None]:
    yield
    tasks = app[keys.TASKS]
    if tasks:
        await asyncio.wait(tasks, timeout=10)


# ------------------------------------------------------------------ error pages
@web.middleware
async def error_pages(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ParamError as exc:  # a bad parameter: a 400 that says which, never a 500
        if _wants_html(request):
            return _render_error(request, 400, exc.message)
        raise web.HTTPBadRequest(text=exc.message) from None
    except web.HTTPException as exc:
        if exc.status >= 400 and _wants_html(request):
            return _render_error(request, exc.status, _own_text(exc), headers=exc.headers)
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_html(request):
            return _render_error(request, 500)
        raise


def _wants_html(request: web.Request) -> bool:
    return request.path != "/wechat" and "text/html" in request.headers.get("Accept", "")


#: what each error page tells a person, in plain Chinese (the number stays small on the page)
ERROR_TEXT = {
    400: ("请求有误", "网址或填写的内容不完整，请返回上一页重新操作。"),
    401: ("请先登录", "请先登录后再打开这个页面。"),
    403: ("无法打开这个页面", "链接已失效，或您没有权限查看。居民请在公众号里发送“查询进度”重新获取链接。"),
    404: ("页面不存在", "页面不存在，或您没有权限查看。"),
    405: ("请从页面上的按钮操作", "这个地址不能直接打开或刷新。请返回上一页，再点页面上的按钮。"),
    413: ("内容太大", "上传的文件或填写的内容太大，请缩小后再试。"),
    429: ("操作太频繁", "操作太频繁，请稍等一分钟再试。"),
    500: ("系统繁忙", "系统繁忙，请稍后再试。"),
    502: ("系统繁忙", "系统繁忙，请稍后再试。"),
    503: ("系统维护中", "系统正在维护，请稍后再试。"),
}


def _own_text(exc: web.HTTPException) -> str:
    """A view's own message (``HTTPForbidden(text="链接已失效…")``), never aiohttp's English default."""
    text = exc.text or ""
    if not text or text == f"{exc.status}: {exc.reason}" or text.isascii():
        return ""
    return text


def _render_error(
    request: web.Request, status: int, text: str = "", *, headers: Mapping[str, str] | None = None
) -> web.Response:
    title, default = ERROR_TEXT.get(status, ERROR_TEXT[500] if status >= 500 else ERROR_TEXT[400])
    staff_side = request.path.startswith("/staff")
    ctx = {"status": status, "title": title, "text": text or default, "staff_side": staff_side}
    response = aiohttp_jinja2.render_template("error.html", request, ctx)
    response.set_status(status)
    for name in ("Allow", "Retry-After", "WWW-Authenticate"):  # what the status promises the client
        if headers and name in headers:
            response.headers[name] = headers[name]
    return response


__all__ = ["create_app", "spawn"]
