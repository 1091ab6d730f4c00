"""The 5-second budget: passive reply when the handler is fast, ``success`` + late delivery when not.

One :class:`_Job` per delivery key runs ``handler.handle`` in a task the runner keeps a reference to.
Requests wait for the job's result up to their own deadline; several requests can wait on one job (a
WeChat retry arriving while the first attempt still runs joins it instead of starting a second one).

Exactly one channel carries the reply: when the job finishes, if some request is still waiting, the
waiting request(s) return it as the passive reply; if nobody waits any more, the job itself calls
``handler.deliver_late``. A handler that can keep a delivery (``KeepsUnanswered``) is asked to, before the last
waiting request answers ``success`` for a job still running; from then on the job's reply always goes late. Both sides decide synchronously on the event loop (the job reads the waiter
count in the same step in which it publishes the result; a waiter gives up only in a step in which the
result is not yet published), so the reply is neither lost nor sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from .types import Delivery, InboundHandler, KeepsUnanswered

log = logging.getLogger(__name__)


def _short(key: str) -> str:
    """A log-friendly handle on a delivery key without the openid in it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


@dataclass
class _Job:
    delivery: Delivery
    result: asyncio.Future[str | None]
    waiters: int = 0
    kept: bool = False
    """The handler was asked to keep the delivery: its reply goes out late, never passively."""
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class ReplyRunner:
    """Runs handler calls as tracked tasks and applies the reply budget."""

    def __init__(self) -> None:
        self._jobs: dict[str, _Job] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.late_deliveries = 0
        self.passive_replies = 0

    @property
    def running(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def answer(self, handler: InboundHandler, delivery: Delivery, *, timeout: float) -> str | None:
        """The passive reply text if ``handler`` answers within ``timeout`` seconds, else None.

        None also when the handler had nothing to say; when it answers later, ``deliver_late`` gets it.
        """
        job = self._jobs.get(delivery.key)
        if job is None:
            job = _Job(delivery=delivery, result=asyncio.get_running_loop().create_future())
            self._jobs[delivery.key] = job
            job.task = self.spawn(self._run(handler, job), name=f"webhook-{_short(delivery.key)}")
        else:
            log.info("webhook: delivery %s joins the attempt still running", _short(delivery.key))
        job.waiters += 1
        try:
            if timeout > 0 and not job.result.done():
                await asyncio.wait({job.result}, timeout=timeout)
            if not job.result.done() and job.waiters == 1 and not job.kept:
                await self._keep(handler, job)
        finally:
            job.waiters -= 1
        if job.kept:
            return None
        if job.result.done() and not job.result.cancelled():
            reply = job.result.result()
            if reply:
                self.passive_replies += 1
            return reply
        return None

    @staticmethod
    async def _keep(handler: InboundHandler, job: _Job) -> None:
        """Before ``success`` is answered for work still running: the handler writes the delivery down (while this
        request still counts as waiting, so a result published meanwhile is not delivered late as well)."""
        if not isinstance(handler, KeepsUnanswered):
            return
        job.kept = True
        try:
            await handler.keep(job.delivery)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "webhook: could not keep delivery %s before answering success", _short(job.delivery.key)
            )

    async def _run(self, handler: InboundHandler, job: _Job) -> None:
        key = job.delivery.key
        reply: str | None = None
        try:
            reply = await handler.handle(job.delivery)
        except asyncio.CancelledError:
            job.result.cancel()
            raise
        except Exception:
            log.exception("webhook: handler failed on delivery %s", _short(key))
        finally:
            if self._jobs.get(key) is job:
                del self._jobs[key]
        if reply is not None and not isinstance(reply, str):
            log.error("webhook: handler returned %s, not text; ignored", type(reply).__name__)
            reply = None
        job.result.set_result(reply)
        if (job.waiters and not job.kept) or not reply:
            return
        self.late_deliveries += 1
        try:
            await handler.deliver_late(job.delivery, reply)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook: late delivery failed for %s", _short(key))

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for running tasks, then cancel what is left."""
        pending = set(self._tasks)
        if not pending:
            return
        log.info("webhook: waiting for %d running task(s)", len(pending))
        _, still = await asyncio.wait(pending, timeout=max(0.0, grace))
        for task in still:
            task.cancel()
        if still:
            log.warning("webhook: cancelled %d task(s) still running at shutdown", len(still))
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*still, return_exceptions=True)
