"""APScheduler 3 for the sweeps and the outbox dispatcher: in the web process (``scheduler_ctx``) or alone
(``python -m bot scheduler``). Jobs are plain ``async def``s with their dependencies as arguments; each catches and
logs its own errors, so one failure never stops the scheduler. Running the jobs in several processes at once is
safe (see bot.deadlines.sweeps and bot.delivery.dispatcher)."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import functools
import gc
import logging
import signal
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import keys
from bot.api.callbacks import callbacks_job
from bot.cases.calltasks import on_unreachable
from bot.cases.rights import retention_sweep
from bot.cases.sweeps import run_sweeps
from bot.db import Sessions, transaction
from bot.deadlines.sweeps import OfferTimeoutHook, staff_digest
from bot.deadlines.waking import waking_of
from bot.deadlines.workdays import CHINA
from bot.delivery.dispatcher import DeliveryConfig, dispatch_all
from bot.pool.donor_sweeps import donor_sweeps
from bot.reporting.warnings import digest_lines, early_warnings

log = logging.getLogger(__name__)
DISPATCH_SECONDS = 2.0
SWEEP_SECONDS = 60.0
CALLBACK_SECONDS = 5.0
DIGEST_AT = (8, 30)  # China time
STOP_GRACE = 20.0  # seconds the runs under way may take to finish when the process is asked to stop
STOP_DEADLINE = 60.0  # a stop that has not ended by then prints every thread's stack and exits (status 1)

# per scheduler: the runs under way (the tasks of its jobs) and the dispatcher's stop flag, for stop_scheduler
_RUNS: weakref.WeakKeyDictionary[Any, tuple[set[asyncio.Task[Any]], asyncio.Event]] = (
    weakref.WeakKeyDictionary()
)


def _tracked(job: Callable[..., Any], runs: set[asyncio.Task[Any]]) -> Callable[..., Any]:
    @functools.wraps(job)
    async def run(**kwargs: Any) -> Any:
        task = asyncio.current_task()
        if task is not None:
            runs.add(task)
        try:
            return await job(**kwargs)
        finally:
            runs.discard(task)

    return run


async def stop_scheduler(scheduler: Any, *, grace: float = STOP_GRACE) -> None:
    """Start nothing more, let the runs under way finish (the sends under way are answered and recorded, the batch's
    others go back to the queue; a sweep commits), then cancel what is still running after ``grace`` seconds and wait
    for it to unwind. Cancelling a run in the middle of a statement and not waiting for it (APScheduler's ``shutdown(wait=False)`` alone) can leave its database
    connection open, and aiosqlite's connection thread then keeps the process from exiting."""
    if not scheduler.running:
        return
    scheduler.pause()
    runs, stopping = _RUNS.get(scheduler, (set(), asyncio.Event()))
    stopping.set()
    if runs:
        _done, late = await asyncio.wait(set(runs), timeout=grace)
        if late:
            log.warning(
                "stopping: %d job run(s) still under way after %.0f s are cancelled", len(late), grace
            )
    scheduler.shutdown(wait=False)  # cancels the runs still under way
    if runs:
        await asyncio.wait(set(runs), timeout=5)


def delivery_config(settings: Any, *, lease: timedelta | None = None, sms: Any = None) -> DeliveryConfig:
    cfg = DeliveryConfig(
        template_id=settings.wechat_template_id,
        base_url=settings.base_url,
        link_secret=settings.link_secret,
        # the case side of a resident neither WeChat nor SMS reached: flag and call task (bot.cases.calltasks)
        on_unreachable=functools.partial(on_unreachable, waking=waking_of(settings)),
        sms=sms,  # the SMS provider (keys.SMS) for residents without WeChat and the 43004 fallback
        sms_per_hour=settings.sms_per_number_per_hour,
    )
    if lease is not None:
        cfg.lease = lease
    return cfg


def find_offer_timeout_hook(settings: Any = None) -> OfferTimeoutHook:
    # lazy: loaded only by the job or the scheduler process that uses it (the web process imports this module)
    """The matching engine's hook: a timed-out offer goes to the next candidate (or flags the case)."""
    from bot.pool import PoolConfig, make_offer_timeout_hook  # lazy: as above

    return make_offer_timeout_hook(PoolConfig.from_settings(settings))


async def dispatch_job(
    *, sessions: Sessions, api: Any, clock: Callable[[], datetime], concurrency: int, config: DeliveryConfig
) -> None:
    try:
        stats = await dispatch_all(
            sessions=sessions, api=api, clock=clock, concurrency=concurrency, config=config
        )
        if stats.claimed:
            log.info(
                "outbox: %d sent (%d custom, %d template), %d retry later, %d failed, %d unreachable",
                stats.sent,
                stats.via_custom,
                stats.via_template,
                stats.retried,
                stats.failed,
                stats.unreachable,
            )
    except Exception:
        log.exception("the outbox dispatcher failed")


async def sweep_job(
    *, sessions: Sessions, clock: Callable[[], datetime], hook: OfferTimeoutHook | None, settings: Any = None
) -> None:
    try:
        counts = await run_sweeps(
            sessions=sessions, now=clock(), offer_timeout_hook=hook, waking=waking_of(settings)
        )
        counts.update(await donor_sweeps(sessions=sessions, now=clock()))
        # lazy: loaded only by the job or the scheduler process that uses it (the web process imports this module)
        if settings is not None and settings.auto_offer_towns:
            from bot.db import transaction  # lazy: as above
            from bot.pool import PoolConfig, auto_offer_due  # lazy: as above

            async with transaction(sessions) as session:
                counts["auto_offers"] = await auto_offer_due(
                    session, now=clock(), config=PoolConfig.from_settings(settings)
                )
        if any(counts.values()):
            log.info("sweeps: %s", ", ".join(f"{k}={v}" for k, v in counts.items() if v))
    except Exception:
        log.exception("the sweeps failed")


async def digest_job(*, sessions: Sessions, clock: Callable[[], datetime]) -> None:
    try:
        now = clock()
        notes: dict[str | None, list[str]] = {}
        try:
            async with sessions() as db:
                notes = digest_lines(await early_warnings(db, now=now))
        except Exception:  # the digest goes out without its warnings rather than not at all
            log.exception("the early warnings failed")
        n = await staff_digest(sessions=sessions, now=now, notes=notes)
        log.info("daily digest: %d staff", n)
    except Exception:
        log.exception("the daily digest failed")


async def retention_job(*, sessions: Sessions, clock: Callable[[], datetime], years: int) -> int:
    """Anonymise the cases finished longer ago than the retention period, a batch per transaction."""
    total = 0
    try:
        while years > 0:
            async with transaction(sessions) as db:
                n = await retention_sweep(db, now=clock(), years=years)
            total += n
            if n == 0:
                break
        if total:
            log.info("retention: %d cases anonymised", total)
    except Exception:
        log.exception("the retention sweep failed")
    return total


def build_scheduler(
    *,
    sessions: Sessions,
    api: Any,
    # lazy: loaded only by the job or the scheduler process that uses it (the web process imports this module)
    clock: Callable[[], datetime],
    concurrency: int,
    config: DeliveryConfig,
    dispatch_seconds: float = DISPATCH_SECONDS,
    sweep_seconds: float = SWEEP_SECONDS,
    settings: Any = None,
    http: Any = None,
) -> Any:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler  # lazy: as above

    scheduler = AsyncIOScheduler(timezone=CHINA)
    runs: set[asyncio.Task[Any]] = set()
    _RUNS[scheduler] = (runs, config.stopping)
    hook = find_offer_timeout_hook(settings)
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    scheduler.add_job(
        _tracked(dispatch_job, runs),
        "interval",
        seconds=dispatch_seconds,
        id="dispatch",
        kwargs={
            "sessions": sessions,
            "api": api,
            "clock": clock,
            "concurrency": concurrency,
            "config": config,
        },
        next_run_time=datetime.now(UTC),
        **common,
    )
    scheduler.add_job(
        _tracked(sweep_job, runs),
        "interval",
        seconds=sweep_seconds,
        id="sweeps",
        kwargs={"sessions": sessions, "clock": clock, "hook": hook, "settings": settings},
        next_run_time=datetime.now(UTC),
        **common,
    )
    scheduler.add_job(
        _tracked(digest_job, runs),
        "cron",
        hour=DIGEST_AT[0],
        minute=DIGEST_AT[1],
        timezone=CHINA,
        id="digest",
        kwargs={"sessions": sessions, "clock": clock},
        **common,
    )
    scheduler.add_job(
        _tracked(retention_job, runs),
        "cron",
        hour=3,
        minute=30,
        timezone=CHINA,
        id="retention",
        kwargs={"sessions": sessions, "clock": clock, "years": getattr(settings, "retention_years", 3)},
        **common,
    )
    if http is not None:  # the open API's status-change callbacks
        scheduler.add_job(
            _tracked(callbacks_job, runs),
            "interval",
            seconds=CALLBACK_SECONDS,
            id="api_callbacks",
            kwargs={"sessions": sessions, "http": http, "clock": clock},
            next_run_time=datetime.now(UTC),
            **common,
        )
    return scheduler


async def scheduler_ctx(app: Any) -> AsyncIterator[None]:
    """Cleanup context: the scheduler starts after the database and the WeChat client, and stops first."""
    settings = app[keys.SETTINGS]
    scheduler = build_scheduler(
        sessions=app[keys.SESSIONS],
        api=app[keys.WECHAT],
        clock=app[keys.CLOCK],
        concurrency=settings.outbox_concurrency,
        config=delivery_config(settings, sms=app.get(keys.SMS)),
        settings=settings,
        http=app[keys.HTTP],
    )
    app[keys.SCHEDULER] = scheduler
    scheduler.start()
    try:
        yield
    finally:
        await stop_scheduler(scheduler)


async def dispatch_now(app: Any) -> None:
    """Send what is due at once (the webhook's late replies), instead of waiting for the next tick."""
    settings = app[keys.SETTINGS]
    await dispatch_job(
        sessions=app[keys.SESSIONS],
        api=app[keys.WECHAT],
        # lazy: loaded only by the job or the scheduler process that uses it (the web process imports this module)
        clock=app[keys.CLOCK],
        concurrency=settings.outbox_concurrency,
        # lazy: loaded only by the job or the scheduler process that uses it (the web process imports this module)
        config=delivery_config(settings, sms=app.get(keys.SMS)),
    )


# ---------------------------------------------------------------------------------------- the process
async def _run(args: argparse.Namespace) -> int:
    import aiohttp  # lazy: as above

    from bot.db import make_engine, make_sessions, migrate  # lazy: as above
    from bot.delivery.wechat_api import WeChatAPI  # lazy: as above
    from bot.settings import Settings  # lazy: as above
    # lazy: loaded only by the job or the scheduler process that uses it (the web process imports this module)

    settings = Settings()
    if args.migrate:
        await migrate(settings.db_url)
    engine = make_engine(settings.db_url, **settings.db_pool)
    sessions = make_sessions(engine)
    redis = None
    if settings.redis_url:
        import redis.asyncio as redis_asyncio  # lazy: as above

        # short timeouts: a Redis that hangs must not hold the jobs (the token falls back to this process's own)
        redis = redis_asyncio.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)

    def clock() -> datetime:
        return datetime.now(UTC)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with aiohttp.ClientSession() as http:
        # lazy: loaded only by the job or the scheduler process that uses it (the web process imports this module)
        api = WeChatAPI(
            session=http,
            base_url=settings.api_base,
            appid=settings.wechat_appid,
            secret=settings.wechat_secret,
            redis=redis,
            clock=clock,
        )
        from bot.delivery.sms import make_provider  # lazy: as above

        config = delivery_config(
            settings, lease=timedelta(seconds=args.lease_seconds), sms=make_provider(settings, session=http)
        )
        concurrency = args.concurrency or settings.outbox_concurrency
        if args.once:
            await sweep_job(
                sessions=sessions, clock=clock, hook=find_offer_timeout_hook(settings), settings=settings
            )
            await dispatch_job(
                sessions=sessions, api=api, clock=clock, concurrency=concurrency, config=config
            )
        else:
            scheduler = build_scheduler(
                sessions=sessions,
                api=api,
                clock=clock,
                concurrency=concurrency,
                config=config,
                dispatch_seconds=args.dispatch_seconds,
                sweep_seconds=args.sweep_seconds,
                settings=settings,
                http=http,
            )
            scheduler.start()
            log.info(
                "scheduler running (dispatch every %ss, sweeps every %ss)",
                args.dispatch_seconds,
                args.sweep_seconds,
            )
            await stop.wait()
            # a stop that hangs (a stuck connection, a thread that never ends) says where and exits, never waits forever
            faulthandler.dump_traceback_later(STOP_DEADLINE, exit=True)
            await stop_scheduler(scheduler)
    if redis is not None:
        await redis.aclose()  # type: ignore[attr-defined]
    await engine.dispose()
    gc.collect()  # a connection dropped in a reference cycle is closed now, not after the threads are joined
    log.info("scheduler stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot scheduler", description="run the sweeps and the dispatcher"
    )
    parser.add_argument(
        "--once", action="store_true", help="run every sweep and one dispatch round, then exit"
    )
    parser.add_argument("--migrate", action="store_true", help="bring the database schema up to date first")
    parser.add_argument("--dispatch-seconds", type=float, default=DISPATCH_SECONDS)
    parser.add_argument("--sweep-seconds", type=float, default=SWEEP_SECONDS)
    parser.add_argument(
        "--lease-seconds", type=float, default=60.0, help="how long a claimed message is held"
    )
    parser.add_argument("--concurrency", type=int, default=0)
    args = parser.parse_args(argv or [])
    from bot.ops.eventloop import run  # lazy: as above
    from bot.settings import Settings  # lazy: as above

    return run(_run(args), Settings().event_loop)


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise SystemExit(main(sys.argv[1:]))
