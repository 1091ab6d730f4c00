"""The real-Rasa part of the scale-out benchmark (``benchmarks.scaleout``, on by default, ``--no-rasa`` skips it).

Rasa servers (``rasa run --enable-api`` from ``.venv-rasa`` with the newest trained model in
``nlu_data/models/``, each a process of its own on its own port, as ``deploy/docker-compose.yml`` runs replicas)
are started by the benchmark.
Then, for each replica count N (default 1 and 2):

- ``rasa_ceiling xN``: Rasa's ``POST /model/parse`` alone, the texts the bot run sent, the same concurrency, spread
  round robin over the N replicas by the load generator: what N replicas can parse, nothing else running.
- ``bot x1 + rasa xN``: one bot worker (PostgreSQL, Redis) with ``RASA_URL`` naming the N replicas, so the bot's
  own client spreads its parses over them (``bot.conversation.nlu.replicas``), parse cache on as in production.
  Audited like the keyword runs (lost, duplicated), and the share of messages Rasa understood (not the keyword
  fallback after a failure or ``RASA_TIMEOUT``) is reported.

CPU milliseconds per message are measured for the bot worker and for every Rasa process, and RSS for each; from
them ``per_core_msg_s`` = 1000 / (bot + Rasa CPU ms per message): how many messages one core's worth of CPU carries,
the figure to extrapolate to a larger machine (with N cores, about N times that while neither the database nor the
load generator is the limit)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.webhook import (
    GREETINGS,
    QUERIES,
    RASA_TOKEN,
    ROOT,
    WISHES,
    Delivery,
    Run,
    _timed,
    free_port,
)


@dataclass(frozen=True)
class RasaServer:
    url: str
    pid: int | None


def tree_rss_mb(pid: int | None) -> float | None:
    """Resident memory of ``pid`` and its child processes (a server that forks workers counts them all)."""
    if pid is None:
        return None
    total, found = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            this = int(stat.parent.name)
            if this != pid and int(fields[1]) != pid:
                continue
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    found = True
        except (OSError, IndexError, ValueError):
            continue
    return total / 1024 if found else None


def rasa_model(choice: str | None, progress: Callable[[str], None]) -> Path:
    """The model file: ``choice`` when given; else the newest trained model in ``nlu_data/models/`` (throughput
    hardly depends on which training examples it saw, and retraining takes minutes); else one is trained, as
    ``python -m bot train`` does."""
    from bot.ops.rasa_service import train_if_needed

    if choice:
        path = Path(choice)
        if not path.is_file():
            raise SystemExit(f"--rasa-model: no such file {path}")
        return path
    models = ROOT / "nlu_data" / "models"
    trained = sorted(models.glob("nlu-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if trained:
        return trained[-1]
    progress("no trained model yet: training one (minutes)")
    return train_if_needed(
        project_dir=ROOT / "nlu_data", models_dir=models, rasa_bin=ROOT / ".venv-rasa" / "bin" / "rasa"
    )


@contextlib.asynccontextmanager
async def rasa_servers(
    count: int, model: Path, progress: Callable[[str], None]
) -> AsyncIterator[list[RasaServer]]:
    """``count`` Rasa servers with ``model``, each warmed up (the first parses build the graph)."""
    from bot.ops.rasa_service import RasaProcess

    rasa_bin = ROOT / ".venv-rasa" / "bin" / "rasa"
    procs = [
        RasaProcess(rasa_bin=rasa_bin, model=model, port=free_port(), token=RASA_TOKEN, startup_timeout=400)
        for _ in range(count)
    ]
    try:
        for i, proc in enumerate(procs):  # one after the other: loading a model is CPU-heavy
            progress(f"starting Rasa replica {i + 1}/{count} ({model.name})")
            started = time.perf_counter()
            await proc.start()
            progress(f"  ready in {time.perf_counter() - started:.0f} s on {proc.url}")
        async with aiohttp.ClientSession() as http:
            for proc in procs:
                for text in (*WISHES[:2], *QUERIES[:1], *GREETINGS[:1]):
                    async with http.post(
                        f"{proc.url}/model/parse", params={"token": RASA_TOKEN}, json={"text": text}
                    ) as resp:
                        await resp.read()
        yield [RasaServer(url=p.url, pid=p.pid) for p in procs]
    finally:
        for proc in procs:
            await proc.stop()


async def spread_parse_load(*, urls: list[str], texts_by_sender: list[list[str]], label: str) -> Run:
    """Rasa's /model/parse alone: one concurrent client per sender, replaying that sender's texts, each request to
    the next of ``urls`` in turn."""
    turn = itertools.cycle(urls)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def parse(text: str) -> Any:
            async with http.post(
                f"{next(turn)}/model/parse",
                params={"token": RASA_TOKEN},
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
        label=label,
        senders=len(texts_by_sender),
        seconds=seconds,
        deliveries=[d for b in batches for d in b],
        openids=[str(i) for i in range(len(texts_by_sender))],
    )


def per_core(*cpu_ms: float | None) -> float | None:
    """Messages one core's worth of CPU carries when every message costs the sum of ``cpu_ms``."""
    used = [c for c in cpu_ms if c is not None]
    return round(1000 / sum(used), 1) if used and sum(used) > 0 else None


__all__ = ["RasaServer", "per_core", "rasa_model", "rasa_servers", "spread_parse_load", "tree_rss_mb"]
