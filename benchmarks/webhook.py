"""Load on the WeChat webhook: N residents at once, each sending signed, encrypted (safe mode) text messages.

One run measures four targets on the same machine, one after the other, so that their ratios hold on a noisy box:

- ``bare``: an aiohttp endpoint that answers ``success`` (the floor: HTTP + the client's signing and encryption);
- ``keyword``: the bot (webhook, dedupe, dialogue, database) with the NLU replaced by the keyword interpreter;
- ``rasa_ceiling``: Rasa's ``POST /model/parse`` alone, the same texts under the same concurrency;
- ``rasa``: the bot with the real Rasa server.

The bot (with the WeChat simulator beside it, for late replies) and the bare endpoint run in child processes, so
the load generator does not share their event loop. Each resident follows a realistic script (greetings, wishes,
community problems, progress queries), answering the bot's questions, so conversations create state and cases;
about 5 % of messages are delivered twice, as WeChat's retries (some overlapping the first attempt, some after it).

Afterwards the database is audited: ``lost`` counts messages whose reply neither came back passively nor sits in
the outbox; ``duplicated`` counts deliveries with more than one effect (a second row, two different replies, a
passive reply *and* an outbox reply, a case no recorded reply announces).

    python -m benchmarks.webhook [--senders 16] [--messages 20] [--database-url URL] [--no-rasa]
    python -m benchmarks.webhook --full [--step-seconds 180] [--no-rasa] [--no-postgres]   (benchmarks/full.py)

The last line is a JSON object: bare_rps, keyword_rps, keyword_p99_ms, rasa_rps, rasa_p99_ms, rasa_ceiling_rps,
lost, duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import multiprocessing
import os
import platform
import random
import socket
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.conversation.inbound import BUSY_KEPT, KEPT
from bot.ops import eventloop
from reference.case_numbers import CASE_NO as CASE_NUMBER

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
TOKEN, APPID, SECRET = "bench-token", "wxbench0000simulator", "bench-secret"
AES_KEY = "benchmarkKey0123456789abcdefghijklmnopqrstu"  # 43 characters, as WeChat's EncodingAESKey
RASA_TOKEN = "bench-rasa-token"
CASE_NO = CASE_NUMBER
RETRY_SHARE = 0.05
CLIENT_TIMEOUT = 5.0  # WeChat waits 5 s for an answer

# ---------------------------------------------------------------------------- what residents say
GREETINGS = ("你好", "您好，请问这里能帮什么忙", "在吗？", "早上好")
WISHES = (
    "我爸中风后走不了路，想要一辆轮椅，我们住在厚街镇",
    "家里老人耳朵不好，想申请一个助听器，住在虎门",
    "孩子上网课没有电脑，能不能帮忙申请一台旧电脑，我们在常平镇",
    "我妈一个人在家，想有人上门陪她聊聊天，住南城",
    "家里困难，米和油快吃完了，想申请一点米面油，在东坑镇",
    "我家孩子读书缺学习用品和书包，我们在樟木头",
)
PROJECTS = (
    "我们村口的路灯坏了好几天了，晚上好黑，在塘厦镇",
    "小区门口的下水道堵了，一下雨就水浸，在长安镇",
    "学校门口的路口车开得太快，想装个减速带，在大朗镇",
    "楼梯没有扶手，老人上下楼很危险，住在石龙",
    "我们村口的路灯坏了好几天了晚上好黑",  # no town: the bot asks for it
)
QUERIES = ("查询进度", "我的申请办得怎么样了", "查一下进度")
TOWNS = ("厚街", "虎门", "长安", "南城", "松山湖", "樟木头")

# Wishes and projects are composed from parts, so that nearly every one a run sends is new text: what the bot reads
# from a text (the NLU's parse, the case reading's tags) is cached per text, and a handful of fixed sentences sent
# again and again measured those caches instead of the reading a new resident's words cost.
_WHO = ("我爸", "我妈", "家里老人", "我外婆", "我老公", "孩子", "我阿爷", "隔壁阿婆", "我奶奶", "我女儿")
_WHY = (
    "中风后走不了路",
    "耳朵不好",
    "腿脚不方便",
    "一个人在家",
    "身体一直不好",
    "读书有困难",
    "眼睛看不清",
    "冬天好怕冷",
    "刚做完手术",
    "家里困难",
)
_ASK = ("想要", "想申请", "能不能帮忙申请", "希望有", "需要")
_ITEMS = (
    "一辆轮椅",
    "一个助听器",
    "一台电脑",
    "一张护理床",
    "两床棉被",
    "一个电饭煲",
    "一副老花镜",
    "一部老人手机",
    "一点米面油",
    "学习用品和书包",
    "一个取暖器",
    "一根拐杖",
    "一张书桌",
    "一台洗衣机",
    "一个血压计",
)
_PLACES = ("我们村口", "小区门口", "学校门口", "我们楼下", "市场旁边", "公园里面", "村委对面", "我们巷口")
_THINGS = (
    "的路灯坏了好几天了，晚上好黑",
    "的下水道堵了，一下雨就水浸",
    "车开得太快，想装个减速带",
    "的楼梯没有扶手，老人上下楼很危险",
    "的垃圾没人清理，好臭",
    "的井盖烂了，好危险",
    "的凉亭漏水",
    "的健身器材坏了",
    "的树快倒了",
    "的围栏断了",
)
_WISH_TOWNS = (
    "厚街",
    "虎门",
    "常平",
    "南城",
    "东坑",
    "樟木头",
    "长安",
    "大朗",
    "石龙",
    "塘厦",
    "凤岗",
    "寮步",
)


def _where(rng: random.Random) -> str:
    town = rng.choice(_WISH_TOWNS)
    return rng.choice((f"，我们住在{town}镇", f"，住在{town}", f"，在{town}", f" {town}的"))


def wish_text(rng: random.Random) -> str:
    return f"{rng.choice(_WHO)}{rng.choice(_WHY)}，{rng.choice(_ASK)}{rng.choice(_ITEMS)}{_where(rng)}"


def project_text(rng: random.Random) -> str:
    text = f"{rng.choice(_PLACES)}{rng.choice(_THINGS)}"
    return text if rng.random() < 0.2 else text + _where(rng)  # no town: the bot asks for it


def conversation(rng: random.Random, *, phone: str) -> Generator[str, str | None, None]:
    """One resident's side of the chat: yields the next message, receives the bot's passive reply (or None)."""
    reply = yield rng.choice(GREETINGS)
    while True:
        roll = rng.random()
        if roll < 0.35:
            kind, text = "1", wish_text(rng)
        elif roll < 0.6:
            kind, text = "2", project_text(rng)
        elif roll < 0.85:
            reply = yield rng.choice(QUERIES)
            continue
        else:
            reply = yield rng.choice(GREETINGS)
            continue
        reply = yield text
        for _ in range(6):  # answer what the bot asks until the case is filed (or the bot stops asking)
            answer = follow_up(reply, rng=rng, kind=kind, text=text, phone=phone)
            if answer is None:
                break
            reply = yield answer


def follow_up(reply: str | None, *, rng: random.Random, kind: str, text: str, phone: str) -> str | None:
    """What a cooperative resident answers to the bot's question in ``reply``; None when nothing is asked."""
    if not reply or CASE_NO.search(reply):
        return None
    if "“同意”" in reply:
        return "同意"
    if "镇街" in reply and ("哪个" in reply or "名字" in reply):
        return rng.choice(TOWNS)
    if "联系电话" in reply:
        return phone if rng.random() < 0.5 else "不用"
    if "回复“确认”" in reply:
        return "确认"
    if "微心愿" in reply and "微实事" in reply and "回复数字" in reply:
        return kind  # the numbered menu: choose the kind
    if "回复1" in reply:
        return kind
    if "具体需要什么" in reply:
        return text
    return None


# ---------------------------------------------------------------------------- measurements
@dataclass
class Delivery:
    """One message (and its WeChat retry, when there is one) as the resident's phone saw it."""

    openid: str
    key: str
    text: str
    latency: float | None  # of the first attempt; None when it failed
    reply: str | None  # the passive reply of the first attempt that had one
    error: str | None = None
    retry_replies: list[str | None] = field(default_factory=list)
    first_reply: str | None = None

    @property
    def retried(self) -> bool:
        return bool(self.retry_replies)


@dataclass
class Run:
    label: str
    senders: int
    seconds: float
    deliveries: list[Delivery]
    openids: list[str]
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the run, per process

    def cpu_ms_per_message(self, process: str) -> float | None:
        used = self.cpu.get(process)
        return None if used is None or not self.messages else used * 1000 / self.messages

    @property
    def messages(self) -> int:
        return len(self.deliveries)

    @property
    def requests(self) -> int:
        return self.messages + sum(len(d.retry_replies) for d in self.deliveries)

    @property
    def errors(self) -> int:
        return sum(1 for d in self.deliveries if d.error)

    @property
    def rps(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def latency_ms(self, q: float) -> float:
        return percentile([d.latency * 1000 for d in self.deliveries if d.latency is not None], q)

    def texts_by_sender(self) -> list[list[str]]:
        by: dict[str, list[str]] = {o: [] for o in self.openids}
        for d in self.deliveries:
            by[d.openid].append(d.text)
        return list(by.values())


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def proc_stat(pid: int) -> tuple[str, list[str]] | None:
    """Process ``pid``'s name and the fields of ``/proc/<pid>/stat`` after it (``[1]`` the parent's pid, ``[11]`` /
    ``[12]`` user / system CPU ticks, ``[13]`` / ``[14]`` those of its exited children); None when it is gone or there
    is no /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, rest = text.rpartition(")")
    return head.partition("(")[2], rest.split()


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads) so far; None where /proc is missing."""
    stat = proc_stat(pid) if pid is not None else None
    if stat is None or len(stat[1]) < 13:
        return None
    return (int(stat[1][11]) + int(stat[1][12])) / os.sysconf("SC_CLK_TCK")


async def metered(work: Awaitable[Run], pids: dict[str, int | None]) -> Run:
    """Run ``work`` and record the CPU seconds each watched process (and this load generator) spent on it."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    client_before = time.process_time()
    run = await work
    run.cpu["client"] = time.process_time() - client_before
    for name, pid in pids.items():
        start, end = before[name], cpu_seconds(pid)
        if start is not None and end is not None:
            run.cpu[name] = end - start
    return run


async def _timed(coro: Awaitable[Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    try:
        result = await coro
    except (aiohttp.ClientError, TimeoutError) as exc:
        result = exc
    return result, time.perf_counter() - started


def _outcome(result: Any) -> tuple[str | None, str | None]:
    """(reply text, error) of one attempt."""
    if isinstance(result, BaseException):
        return None, type(result).__name__
    if result.status != 200:
        return None, f"HTTP {result.status}"
    if result.error:
        return None, f"unreadable reply: {result.error}"
    return result.text, None


async def _send_one(user: Any, text: str, *, msg_id: int, rng: random.Random, retry: bool) -> Delivery:
    from wechat_sim import protocol
    from wechat_sim.client import DEFAULT_ACCOUNT

    xml = protocol.text_message(
        to_user=DEFAULT_ACCOUNT,
        from_user=user.openid,
        content=text,
        msg_id=msg_id,
        create_time=int(time.time()),
    )
    params, body = user.sign_request(xml)
    first_task = asyncio.ensure_future(_timed(user.send_raw(params, body)))
    retry_results: list[Any] = []
    if retry:
        if rng.random() < 0.5:  # WeChat gave up waiting: the same request again while the first still runs
            await asyncio.sleep(rng.uniform(0.0, 0.03))
        else:
            await asyncio.shield(first_task)
        retry_results.append((await _timed(user.send_raw(params, body)))[0])
    result, seconds = await first_task
    text_reply, error = _outcome(result)
    retry_replies = [_outcome(r)[0] for r in retry_results]
    reply = text_reply if text_reply is not None else next((r for r in retry_replies if r is not None), None)
    return Delivery(
        openid=user.openid,
        key=f"msg:{msg_id}",
        text=text,
        latency=None if error else seconds,
        reply=reply,
        error=error,
        retry_replies=retry_replies,
        first_reply=text_reply,
    )


async def drive(
    *, url: str, label: str, senders: int, messages: int, seed: int, retry_share: float = RETRY_SHARE
) -> Run:
    """``senders`` residents at once, each sending ``messages`` messages in turn to the webhook at ``url``."""
    from wechat_sim.client import SimulatedUser, msg_id_source

    tag = uuid.uuid4().hex[:8]
    next_id = msg_id_source()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        users = [
            SimulatedUser(
                http,
                webhook_url=url,
                token=TOKEN,
                appid=APPID,
                aes_key=AES_KEY,
                mode="safe",
                openid=f"obench{tag}{i:05d}",
                timeout=CLIENT_TIMEOUT,
            )
            for i in range(senders)
        ]

        async def resident(i: int, user: Any) -> list[Delivery]:
            rng = random.Random(seed * 100_003 + i)
            script = conversation(rng, phone=f"1380000{i % 10_000:04d}")
            text = next(script)
            out: list[Delivery] = []
            for _ in range(messages):
                d = await _send_one(user, text, msg_id=next_id(), rng=rng, retry=rng.random() < retry_share)
                out.append(d)
                text = script.send(d.reply)
            return out

        started = time.perf_counter()
        per_sender = await asyncio.gather(*(resident(i, u) for i, u in enumerate(users)))
        seconds = time.perf_counter() - started
    deliveries = [d for batch in per_sender for d in batch]
    return Run(
        label=label,
        senders=senders,
        seconds=seconds,
        deliveries=deliveries,
        openids=[u.openid for u in users],
    )


async def parse_load(*, rasa_url: str, token: str, texts_by_sender: list[list[str]]) -> Run:
    """Rasa's /model/parse alone: one concurrent client per sender, replaying that sender's texts."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def parse(text: str) -> Any:
            async with http.post(
                f"{rasa_url}/model/parse",
                params={"token": token},
                json={"text": text[:500]},
                timeout=aiohttp.ClientTimeout(total=30),
            ) as resp:
                await resp.read()
                return resp.status

        async def client(i: int, texts: list[str]) -> list[Delivery]:
            out = []
            for text in texts:
                status, seconds = await _timed(parse(text))
                error = (
                    type(status).__name__
                    if isinstance(status, BaseException)
                    else (None if status == 200 else f"HTTP {status}")
                )
                out.append(
                    Delivery(
                        openid=str(i),
                        key="",
                        text=text,
                        latency=None if error else seconds,
                        reply=None,
                        error=error,
                    )
                )
            return out

        started = time.perf_counter()
        batches = await asyncio.gather(*(client(i, t) for i, t in enumerate(texts_by_sender)))
        seconds = time.perf_counter() - started
    return Run(
        label="rasa_ceiling",
        senders=len(texts_by_sender),
        seconds=seconds,
        deliveries=[d for b in batches for d in b],
        openids=[str(i) for i in range(len(texts_by_sender))],
    )


# ---------------------------------------------------------------------------- lost and duplicated
#: the passive answers of a journalled delivery, whose real answer follows from the outbox
KEPT_ANSWERS = frozenset({KEPT, BUSY_KEPT})


@dataclass(frozen=True)
class Recorded:
    """What the bot's database holds for one run's residents."""

    inbound: list[tuple[str, str, str | None, str | None]]  # (delivery_key, reply_mode, reply, nlu_source)
    outbox_replies: dict[str, str]  # delivery key -> text of the late reply
    cases: list[str]  # case numbers of the run's residents


@dataclass
class Effects:
    lost: int
    duplicated: int
    cases: int
    late: int
    nlu_sources: Counter[str]
    notes: list[str] = field(default_factory=list)


async def drained(base_url: str, *, timeout: float = 300.0) -> float:
    """Seconds until the bot at ``base_url`` has nothing in hand and nothing journalled (its /readyz, asked from
    loopback); ``timeout`` at most. A step's audit waits for this: a flood's journal drains after the load stops."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        while time.monotonic() - started < timeout:
            try:
                async with http.get(f"{base_url}/readyz") as resp:
                    journal = (await resp.json()).get("checks", {}).get("journal", {})
                if not journal.get("pending") and not journal.get("in_flight"):
                    return time.monotonic() - started
            except (aiohttp.ClientError, ValueError):
                pass
            await asyncio.sleep(0.5)
    return time.monotonic() - started


def count_effects(deliveries: list[Delivery], recorded: Recorded) -> Effects:
    """Compare what the residents sent and saw with what the database recorded.

    lost: a message with no recorded row, or whose reply neither reached the phone passively nor sits in the
    outbox. duplicated: a delivery key with more than one row, a retry answered differently from the first
    attempt, a passive reply *and* an outbox reply for one message, or a case that no recorded reply announces
    (a case created twice for one message)."""
    rows: dict[str, list[tuple[str, str | None]]] = {}
    sources: Counter[str] = Counter()
    for key, mode, reply, source in recorded.inbound:
        rows.setdefault(key, []).append((mode, reply))
        sources[source or "none"] += 1
    lost = duplicated = late = 0
    notes: list[str] = []
    for d in deliveries:
        found = rows.get(d.key, [])
        outbox = d.key in recorded.outbox_replies
        late += outbox
        if not found:
            lost += 1
            notes.append(f"{d.key}: no inbound row")
            continue
        if len(found) > 1:
            duplicated += len(found) - 1
            notes.append(f"{d.key}: {len(found)} rows")
        mode, reply = found[0]
        if not (outbox or (mode == "passive" and reply is not None and d.reply == reply)):
            lost += 1
            notes.append(f"{d.key}: reply_mode={mode}, phone saw {'a reply' if d.reply else 'none'}")
        if outbox and d.reply is not None and d.reply not in KEPT_ANSWERS:
            # told "kept" (journalled: database away, or a flood) and then answered as a message is the design
            duplicated += 1
            notes.append(f"{d.key}: passive reply and an outbox reply")
        answers = {r for r in [d.first_reply, *d.retry_replies] if r is not None}
        if len(answers) > 1:
            duplicated += 1
            notes.append(
                f"{d.key}: the retry got a different answer ({' / '.join(sorted(a[:14] for a in answers))})"
            )
    announced: set[str] = set()
    for _, _, reply, _ in recorded.inbound:
        announced.update(CASE_NO.findall(reply or ""))
    for text in recorded.outbox_replies.values():
        announced.update(CASE_NO.findall(text))
    unannounced = [c for c in recorded.cases if c not in announced]
    twice = len(recorded.cases) - len(set(recorded.cases))
    if unannounced or twice:
        duplicated += len(unannounced) + twice
        notes.append(f"cases no reply announces: {len(unannounced)}; case numbers twice: {twice}")
    return Effects(
        lost=lost,
        duplicated=duplicated,
        cases=len(recorded.cases),
        late=late,
        nlu_sources=sources,
        notes=notes,
    )


async def read_recorded(db_url: str, openids: list[str]) -> Recorded:
    from sqlalchemy import select

    from bot.db import make_engine
    from bot.models import Case, InboundMessage, Outbox, Resident

    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            inbound = [
                (r[0], r[1], r[2], r[3])
                for r in await conn.execute(
                    select(
                        InboundMessage.delivery_key,
                        InboundMessage.reply_mode,
                        InboundMessage.reply,  # type: ignore[call-overload]
                        InboundMessage.nlu_source,
                    ).where(InboundMessage.openid.in_(openids))  # type: ignore[attr-defined]
                )
            ]
            outbox = {
                str(r[0]).removeprefix("reply:"): r[1]
                for r in await conn.execute(
                    select(Outbox.dedupe_key, Outbox.text).where(  # type: ignore[call-overload]
                        Outbox.openid.in_(openids), Outbox.kind == "reply"
                    )  # type: ignore[attr-defined]
                )
            }
            cases = [
                r[0]
                for r in await conn.execute(
                    select(Case.case_no)
                    .join(Resident, Case.resident_id == Resident.id)  # type: ignore[call-overload,arg-type]
                    .where(Resident.openid.in_(openids))  # type: ignore[attr-defined]
                )
            ]
    finally:
        await engine.dispose()
    return Recorded(inbound=inbound, outbox_replies=outbox, cases=cases)


# ---------------------------------------------------------------------------- the servers, in child processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bot_settings(
    *, db_url: str, data_dir: Path, rasa_url: str, sim_port: int, bot_port: int
) -> dict[str, Any]:
    return {
        "environment": "development",
        "database_url": db_url,
        "data_dir": str(data_dir),
        "rasa_url": rasa_url,
        "rasa_token": RASA_TOKEN,
        "wechat_token": TOKEN,
        "wechat_appid": APPID,
        "wechat_secret": SECRET,
        "wechat_encoding_aes_key": AES_KEY,
        "wechat_api_base": f"http://127.0.0.1:{sim_port}",
        "scheduler_enabled": False,
        "session_secret": "s" * 40,
        "link_secret": "l" * 40,
        "base_url": f"http://127.0.0.1:{bot_port}",
        "messages_per_minute": 0,  # a load generator is a flood by design: measure the pipeline, not the limiter
    }


def server_loop(options: dict[str, Any]) -> Any:
    """The event loop of a server child: its settings' ``event_loop``, else the environment's ``EVENT_LOOP``, else
    uvloop as a deployed worker runs (``eventloop.loop_factory`` refuses anything else). The bare and crypto
    endpoints take the same, so the ceilings and the bot of a run are measured on one kind of loop."""
    return options.get("settings", {}).get("event_loop") or os.environ.get("EVENT_LOOP", "uvloop")


def _serve_process(kind: str, port: int, options: dict[str, Any], ready: Any, stop: Any) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        eventloop.run(_serve(kind, port, options, ready, stop), server_loop(options))
    except Exception:
        ready.put(traceback.format_exc())
        raise


async def _serve(kind: str, port: int, options: dict[str, Any], ready: Any, stop: Any) -> None:
    from aiohttp import web

    runners: list[web.AppRunner] = []
    if kind == "bare":

        async def success(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(text="success")

        app = web.Application()
        app.router.add_post("/wechat", success)
        apps = [(app, port)]
    elif kind == "sim":
        from wechat_sim.server import create_sim_app

        sim_app = create_sim_app(
            token=TOKEN,
            appid=APPID,
            aes_key=AES_KEY,
            mode="safe",
            webhook_url=options["webhook_url"],
            secret=SECRET,
        )
        apps = [(sim_app, port)]
    else:
        from bot.app import create_app
        from bot.settings import Settings

        settings = Settings(**options["settings"])
        app = create_app(settings, run_migrations=True, with_scheduler=False)
        if kind == "keyword":
            app.cleanup_ctx.append(_keyword_nlu)
        eventloop.settle()  # as `python -m bot serve` does
        apps = [(app, port)]
    for a, p in apps:
        runner = web.AppRunner(a, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", p).start()
        runners.append(runner)
    ready.put("ready")
    await asyncio.to_thread(stop.wait)
    for runner in reversed(runners):
        await runner.cleanup()


async def _keyword_nlu(app: Any) -> AsyncIterator[None]:
    """Replace the NLU (Rasa with a fallback) by the keyword interpreter alone, after the app's own `_nlu`."""
    from bot import keys
    from bot.conversation.nlu import KeywordNLU

    app[keys.NLU_CLIENT] = KeywordNLU()
    yield


@dataclass(frozen=True)
class Served:
    url: str
    pid: int | None


@contextlib.asynccontextmanager
async def serving(
    kind: str, *, port: int, options: dict[str, Any] | None = None, startup_timeout: float = 120
) -> AsyncIterator[Served]:
    """Run the bare endpoint or the bot (``keyword`` / ``rasa``) in a child process; yield its webhook URL. The bot's
    WeChat simulator (its API for the bot's outgoing messages) runs in a child of its own on ``sim_port``: it stands
    for WeChat's servers, so its CPU is not the bot's (in the bot's process it was counted as the bot's)."""
    options = options or {}
    async with contextlib.AsyncExitStack() as stack:
        if kind in ("keyword", "rasa"):
            sim = {"webhook_url": f"http://127.0.0.1:{port}/wechat"}
            await stack.enter_async_context(_child("sim", options["sim_port"], sim, startup_timeout))
        yield await stack.enter_async_context(_child(kind, port, options, startup_timeout))


@contextlib.asynccontextmanager
async def _child(
    kind: str, port: int, options: dict[str, Any], startup_timeout: float
) -> AsyncIterator[Served]:
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve_process, args=(kind, port, options, ready, stop), name=f"bench-{kind}")
    proc.start()
    try:
        status = await asyncio.to_thread(ready.get, True, startup_timeout)
        if status != "ready":
            raise RuntimeError(f"the {kind} server failed to start:\n{status}")
        yield Served(url=f"http://127.0.0.1:{port}/wechat", pid=proc.pid)
    finally:
        stop.set()
        await asyncio.to_thread(proc.join, 30)
        if proc.is_alive():
            proc.terminate()
            await asyncio.to_thread(proc.join, 5)
        ready.close()
        ready.join_thread()


async def warm_up(url: str) -> None:
    """A couple of messages from a resident outside the measurement (first connections, lazy imports, jieba)."""
    await drive(url=url, label="warm-up", senders=2, messages=3, seed=7, retry_share=0.0)


# ---------------------------------------------------------------------------- one whole run
@dataclass
class Report:
    runs: dict[str, Run]
    effects: dict[str, Effects]
    params: dict[str, Any]

    def figures(self) -> dict[str, Any]:
        def r(name: str, attr: str) -> float | None:
            run = self.runs.get(name)
            if run is None:
                return None
            value = run.rps if attr == "rps" else run.latency_ms(99)
            return None if math.isnan(value) else round(value, 1)

        return {
            "bare_rps": r("bare", "rps"),
            "keyword_rps": r("keyword", "rps"),
            "keyword_p99_ms": r("keyword", "p99"),
            "rasa_rps": r("rasa", "rps"),
            "rasa_p99_ms": r("rasa", "p99"),
            "rasa_ceiling_rps": r("rasa_ceiling", "rps"),
            "lost": sum(e.lost for e in self.effects.values()),
            "duplicated": sum(e.duplicated for e in self.effects.values()),
        }

    def lines(self) -> list[str]:
        p = self.params
        out = [
            f"webhook load: {p['senders']} senders x {p['messages']} messages, ~{RETRY_SHARE:.0%} sent twice, "
            f"safe mode, database {p['database']}, {p['cores']} cores, Python {platform.python_version()}",
            f"{'target':<14}{'msgs':>6}{'reqs':>6}{'err':>5}{'secs':>8}{'msg/s':>9}{'p50 ms':>9}"
            f"{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}",
        ]
        for name, run in self.runs.items():
            out.append(
                f"{name:<14}{run.messages:>6}{run.requests:>6}{run.errors:>5}{run.seconds:>8.2f}"
                f"{run.rps:>9.1f}{run.latency_ms(50):>9.1f}{run.latency_ms(90):>9.1f}"
                f"{run.latency_ms(99):>9.1f}{run.latency_ms(100):>9.1f}"
            )
        out.append(
            f"CPU per message (ms), {p['cores']} cores: "
            + "; ".join(
                f"{name} " + ", ".join(f"{proc} {run.cpu_ms_per_message(proc):.1f}" for proc in run.cpu)
                for name, run in self.runs.items()
            )
        )
        for name, e in self.effects.items():
            retried = sum(1 for d in self.runs[name].deliveries if d.retried)
            sources = ", ".join(f"{k} {v}" for k, v in sorted(e.nlu_sources.items()))
            out.append(
                f"{name}: {e.cases} cases filed, {retried} retries, {e.late} late replies via the outbox, "
                f"lost {e.lost}, duplicated {e.duplicated}; NLU sources: {sources}"
            )
            out.extend(f"  ! {n}" for n in e.notes[:10])
        f = self.figures()
        if f["bare_rps"] and f["keyword_rps"]:
            ratios = [f"keyword/bare {f['keyword_rps'] / f['bare_rps']:.2f}"]
            if f["rasa_rps"] and f["rasa_ceiling_rps"]:
                ratios += [
                    f"rasa/keyword {f['rasa_rps'] / f['keyword_rps']:.2f}",
                    f"rasa/ceiling {f['rasa_rps'] / f['rasa_ceiling_rps']:.2f}",
                ]
            out.append("ratios: " + ", ".join(ratios))
        return out


async def run_benchmark(
    *,
    senders: int = 16,
    messages: int = 20,
    database_url: str | None = None,
    with_rasa: bool = True,
    seed: int = 20200401,
    progress: Callable[[str], None] = lambda s: None,
) -> Report:
    params = {
        "senders": senders,
        "messages": messages,
        "cores": os.cpu_count(),
        "database": "postgresql" if database_url and database_url.startswith("postgres") else "sqlite",
    }
    runs: dict[str, Run] = {}
    effects: dict[str, Effects] = {}
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            rasa_url, rasa_pid = (
                "http://127.0.0.1:9",
                None,
            )  # nothing listens there; the keyword run replaces it
            if with_rasa:
                rasa_url, rasa_pid = await stack.enter_async_context(_rasa(progress))

            progress("bare endpoint")
            async with serving("bare", port=free_port()) as served:
                await warm_up(served.url)
                runs["bare"] = await metered(
                    drive(url=served.url, label="bare", senders=senders, messages=messages, seed=seed),
                    {"server": served.pid},
                )

            for kind in ("keyword", "rasa") if with_rasa else ("keyword",):
                if kind == "rasa":
                    progress("Rasa /model/parse alone")
                    runs["rasa_ceiling"] = await metered(
                        parse_load(
                            rasa_url=rasa_url,
                            token=RASA_TOKEN,
                            texts_by_sender=runs["keyword"].texts_by_sender(),
                        ),
                        {"rasa": rasa_pid},
                    )
                progress(f"bot with the {kind} NLU")
                db_url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / f'{kind}.sqlite3'}"
                sim_port, bot_port = free_port(), free_port()
                options = {
                    "sim_port": sim_port,
                    "settings": bot_settings(
                        db_url=db_url,
                        data_dir=Path(tmp),
                        rasa_url=rasa_url,
                        sim_port=sim_port,
                        bot_port=bot_port,
                    ),
                }
                async with serving(kind, port=bot_port, options=options) as served:
                    await warm_up(served.url)
                    runs[kind] = await metered(
                        drive(url=served.url, label=kind, senders=senders, messages=messages, seed=seed),
                        {"server": served.pid, "rasa": rasa_pid if kind == "rasa" else None},
                    )
                    await asyncio.sleep(0.5)  # let late replies reach the outbox before the audit
                effects[kind] = count_effects(
                    runs[kind].deliveries, await read_recorded(db_url, runs[kind].openids)
                )
    order = ["bare", "keyword", "rasa_ceiling", "rasa"]
    return Report(runs={k: runs[k] for k in order if k in runs}, effects=effects, params=params)


@contextlib.asynccontextmanager
async def _rasa(progress: Callable[[str], None]) -> AsyncIterator[tuple[str, int | None]]:
    from bot.ops.rasa_service import RasaProcess, train_if_needed

    rasa_bin = ROOT / ".venv-rasa" / "bin" / "rasa"
    progress("training the NLU model if its inputs changed")
    model = await asyncio.to_thread(
        train_if_needed,
        project_dir=ROOT / "nlu_data",
        models_dir=ROOT / "nlu_data" / "models",
        rasa_bin=rasa_bin,
    )
    progress(f"starting Rasa ({model.name})")
    proc = RasaProcess(
        rasa_bin=rasa_bin, model=model, port=free_port(), token=RASA_TOKEN, startup_timeout=240
    )
    await proc.start()
    try:
        async with (
            aiohttp.ClientSession() as http
        ):  # the first parses build the graph: keep them out of the figures
            for text in (*WISHES[:2], *QUERIES[:1], *GREETINGS[:1]):
                async with http.post(
                    f"{proc.url}/model/parse", params={"token": RASA_TOKEN}, json={"text": text}
                ) as resp:
                    await resp.read()
        child = getattr(proc, "_proc", None)  # RasaProcess keeps its asyncio subprocess private
        yield proc.url, getattr(child, "pid", None)
    finally:
        await proc.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.webhook", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--senders", type=int, default=16, help="concurrent residents (default 16)")
    parser.add_argument(
        "--messages", type=int, default=20, help="messages per resident and target (default 20)"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test (default: fresh SQLite files)",
    )
    parser.add_argument("--no-rasa", action="store_true", help="skip the two Rasa targets")
    parser.add_argument("--seed", type=int, default=20200401)
    # the rising-rate load lives in benchmarks.full, which imports this module
    from benchmarks.full import add_arguments, main_full

    add_arguments(parser)
    args = parser.parse_args(argv)
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.full:
        print(json.dumps(main_full(args), ensure_ascii=False))
        return

    def progress(step: str) -> None:
        print(f"… {step}", flush=True)

    report = asyncio.run(
        run_benchmark(
            senders=args.senders,
            messages=args.messages,
            database_url=args.database_url,
            with_rasa=not args.no_rasa,
            seed=args.seed,
            progress=progress,
        )
    )
    for line in report.lines():
        print(line)
    print(json.dumps(report.figures()))


if __name__ == "__main__":
    main()
