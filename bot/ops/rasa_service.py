"""Rasa as a managed local service: train when the inputs changed, run it on loopback, stop it on exit.

Rasa 3.6 lives in its own Python 3.10 environment (`.venv-rasa`) and is reached over its HTTP API only.
Telemetry is always off: residents' words never leave the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RASA_BIN = REPO_ROOT / ".venv-rasa" / "bin" / "rasa"
DEFAULT_PROJECT_DIR = REPO_ROOT / "nlu_data"
DEFAULT_MODELS_DIR = DEFAULT_PROJECT_DIR / "models"

# What a model is trained from (relative to the project dir). The held-out test set is deliberately not included.
# `components/*.py` are the project's own graph components (config.yml names them): changing one retrains.
_INPUT_GLOBS = (
    "config.yml",
    "domain.yml",
    "data/**/*.yml",
    "data/**/*.yaml",
    "jieba/*",
    "components/*.py",
)


class RasaError(RuntimeError):
    """Training or starting Rasa failed; the message carries the tail of Rasa's output."""


#: Training is reproducible only with these: TensorFlow's deterministic kernels, a fixed thread layout, a fixed
#: hash seed, and no reuse of components cached by an earlier training (Rasa's cache would restore a DIET trained
#: under other settings). Two trainings from scratch then give identical predictions (checked on the dev set), so
#: CI's model is the model whose figures nlu_data/README.md reports. Part of the model hash.
DETERMINISM = {
    "TF_DETERMINISTIC_OPS": "1",
    "TF_INTER_OP_PARALLELISM_THREADS": "1",
    "TF_INTRA_OP_PARALLELISM_THREADS": "2",
    "PYTHONHASHSEED": "0",
    "RASA_MAX_CACHE_SIZE": "0",
}


def rasa_env() -> dict[str, str]:
    env = dict(os.environ)
    env["RASA_TELEMETRY_ENABLED"] = "false"  # residents' words never leave the machine
    env.update(DETERMINISM)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONWARNINGS", "ignore")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    return env


def input_files(project_dir: Path) -> list[Path]:
    files: set[Path] = set()
    for pattern in _INPUT_GLOBS:
        files.update(p for p in project_dir.glob(pattern) if p.is_file())
    return sorted(files)


def inputs_hash(project_dir: Path) -> str:
    """A short hash over the training inputs (config, domain, data, jieba dictionary, components), their paths and
    the training environment that makes the result reproducible."""
    digest = hashlib.sha256()
    digest.update(repr(sorted(DETERMINISM.items())).encode())
    project_dir = Path(project_dir)
    for path in input_files(project_dir):
        digest.update(path.relative_to(project_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def model_path_for(models_dir: Path, digest: str) -> Path:
    return Path(models_dir) / f"nlu-{digest}.tar.gz"


def train_if_needed(*, project_dir: Path, models_dir: Path, rasa_bin: Path = DEFAULT_RASA_BIN) -> Path:
    """Train `rasa train nlu` unless a model for the current inputs exists; return the model file (blocking).

    Concurrent callers (several test processes, two launchers) serialise on a lock file; the model appears
    under its final name only when complete.
    """
    project_dir, models_dir = Path(project_dir).resolve(), Path(models_dir).resolve()
    rasa_bin = Path(rasa_bin).absolute()
    models_dir.mkdir(parents=True, exist_ok=True)
    digest = inputs_hash(project_dir)
    target = model_path_for(models_dir, digest)
    if target.exists():
        return target
    with open(models_dir / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        if not Path(rasa_bin).exists():
            raise RasaError(f"Rasa is not installed at {rasa_bin}; run the setup script first")
        log.info("training the NLU model (inputs %s); this takes a couple of minutes", digest)
        with tempfile.TemporaryDirectory(dir=models_dir, prefix=".train-") as tmp:
            cmd = [
                str(rasa_bin),
                "train",
                "nlu",
                "--config",
                "config.yml",
                "--nlu",
                "data",
                "--domain",
                "domain.yml",
                "--out",
                tmp,
                "--fixed-model-name",
                "model",
            ]
            proc = subprocess.run(
                cmd, cwd=project_dir, env=rasa_env(), capture_output=True, text=True, check=False
            )
            produced = Path(tmp) / "model.tar.gz"
            if proc.returncode != 0 or not produced.exists():
                tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
                raise RasaError(f"rasa train nlu failed (exit {proc.returncode}):\n{tail}")
            shutil.move(str(produced), target)
        log.info("trained %s", target.name)
        _prune(models_dir, keep=target)
    return target


def _prune(models_dir: Path, *, keep: Path, spare: int = 2) -> None:
    """Keep the new model and the `spare` most recent others (each is tens of MB)."""
    others = sorted(
        (p for p in models_dir.glob("nlu-*.tar.gz") if p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in others[spare:]:
        old.unlink(missing_ok=True)


class RasaProcess:
    """`rasa run --enable-api` on loopback as a child process.

    It runs in the Rasa project folder (`cwd`, default `nlu_data/`): Rasa puts its working directory on `sys.path`,
    and that is how the model's own components (`components.ensemble…`) are imported.
    """

    def __init__(
        self,
        *,
        rasa_bin: Path,
        model: Path,
        port: int,
        token: str,
        host: str = "127.0.0.1",
        cwd: Path | None = None,
        startup_timeout: float = 120.0,
    ):
        self.rasa_bin = Path(rasa_bin).absolute()
        self.model = Path(model).absolute()
        self.port = port
        self.host = host
        self.token = token
        self.cwd = Path(cwd) if cwd is not None else DEFAULT_PROJECT_DIR
        self.startup_timeout = startup_timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._log: deque[str] = deque(maxlen=60)
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The Rasa server's process id while it runs (for measurements)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def log_tail(self) -> str:
        return "\n".join(self._log)

    async def _read_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for line in self._proc.stdout:
            self._log.append(line.decode("utf-8", "replace").rstrip())

    def command(self) -> list[str]:
        """``rasa run``'s arguments. The token is joined to its option: a token that begins with "-" (one in 64
        of ``secrets.token_urlsafe``) would otherwise be read as an option and Rasa would refuse to start."""
        return [
            str(self.rasa_bin),
            "run",
            "--enable-api",
            f"--auth-token={self.token}",
            "-i",
            self.host,
            "-p",
            str(self.port),
            "-m",
            str(self.model),
        ]

    async def start(self) -> None:
        if not self.rasa_bin.exists():
            raise RasaError(f"Rasa is not installed at {self.rasa_bin}; run the setup script first")
        cmd = self.command()
        log.info("starting Rasa on %s with %s", self.url, self.model.name)
        self._proc = await asyncio.create_subprocess_exec(
            *cmd,
            cwd=str(self.cwd),
            env=rasa_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = asyncio.create_task(self._read_output())
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_timeout
        async with aiohttp.ClientSession() as session:
            while loop.time() < deadline:
                if not self.running:
                    await asyncio.sleep(0.2)  # let the reader drain the last lines
                    raise RasaError(f"Rasa exited during startup:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                    async with session.get(
                        f"{self.url}/status",
                        params={"token": self.token},
                        timeout=aiohttp.ClientTimeout(total=2),
                    ) as resp:
                        if resp.status == 200 and (await resp.json()).get("model_file"):
                            log.info("Rasa is ready on %s", self.url)
                            return
                await asyncio.sleep(0.5)
        raise RasaError(f"Rasa did not become ready within {self.startup_timeout:.0f} s:\n{self.log_tail()}")

    async def stop(self, *, grace: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None


@contextlib.asynccontextmanager
async def managed_rasa(
    *,
    rasa_bin: Path = DEFAULT_RASA_BIN,
    project_dir: Path = DEFAULT_PROJECT_DIR,
    models_dir: Path = DEFAULT_MODELS_DIR,
    port: int,
    token: str,
) -> AsyncIterator[str]:
    """Train if needed, start Rasa, yield its base URL, stop it on exit."""
    model = await asyncio.to_thread(
        train_if_needed, project_dir=project_dir, models_dir=models_dir, rasa_bin=rasa_bin
    )
    process = RasaProcess(rasa_bin=rasa_bin, model=model, port=port, token=token, cwd=project_dir)
    await process.start()
    try:
        yield process.url
    finally:
        await process.stop()
