"""The managed Rasa: train only when the inputs changed, start, wait for readiness, stop."""

from __future__ import annotations

import shutil
import socket
import sys
import textwrap
from pathlib import Path

import aiohttp
import pytest

from bot.rasa_service import RasaError, RasaProcess, inputs_hash, managed_rasa, train_if_needed

PROJECT = Path(__file__).resolve().parent.parent / "nlu_data"

# A stand-in for the `rasa` executable (the real one needs minutes to train): it logs each call, and
# `train nlu --out DIR --fixed-model-name NAME` writes DIR/NAME.tar.gz; `run` serves /status like Rasa.
FAKE_RASA = textwrap.dedent(
    f"""\
    #!{sys.executable}
    import json, os, sys
    from pathlib import Path
    args = sys.argv[1:]
    with open(os.environ.get("FAKE_RASA_LOG", "/dev/null"), "a") as log:
        log.write(" ".join(args) + " telemetry=" + os.environ.get("RASA_TELEMETRY_ENABLED", "") + "\\n")
    if args[:2] == ["train", "nlu"]:
        if os.environ.get("FAKE_RASA_FAIL"):
            print("InvalidConfigException: broken pipeline")
            sys.exit(1)
        out = Path(args[args.index("--out") + 1])
        name = args[args.index("--fixed-model-name") + 1]
        (out / (name + ".tar.gz")).write_bytes(b"model")
    elif args[0] == "run":
        if os.environ.get("FAKE_RASA_FAIL"):
            print("OSError: model could not be loaded")
            sys.exit(1)
        from http.server import BaseHTTPRequestHandler, HTTPServer
        token, port, model = args[args.index("--auth-token") + 1], int(args[args.index("-p") + 1]), args[args.index("-m") + 1]
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                ok = self.path.startswith("/status") and ("token=" + token) in self.path
                body = json.dumps({{"model_file": model}} if ok else {{"error": "unauthorised"}}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a):
                pass
        HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
)


@pytest.fixture
def fake_rasa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "bin" / "rasa"
    script.parent.mkdir()
    script.write_text(FAKE_RASA)
    script.chmod(0o755)
    monkeypatch.setenv("FAKE_RASA_LOG", str(tmp_path / "calls.log"))
    return script


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("models", ".rasa"))
    return copy


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_hash_changes_with_training_data_config_and_dictionary(project: Path) -> None:
    first = inputs_hash(project)
    assert inputs_hash(project) == first
    nlu = project / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text(encoding="utf-8") + "    - 想要一个新书包\n", encoding="utf-8")
    second = inputs_hash(project)
    assert second != first
    config = project / "config.yml"
    config.write_text(config.read_text().replace("epochs: 100", "epochs: 101"))
    third = inputs_hash(project)
    assert third not in {first, second}
    userdict = project / "jieba" / "jieba_userdict.txt"
    userdict.write_text(userdict.read_text(encoding="utf-8") + "圆梦 100 n\n", encoding="utf-8")
    assert inputs_hash(project) not in {first, second, third}


def test_heldout_set_is_not_a_training_input(project: Path) -> None:
    before = inputs_hash(project)
    heldout = project / "tests" / "heldout.yml"
    heldout.write_text(heldout.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert inputs_hash(project) == before


def test_trains_once_then_reuses_the_model(project: Path, tmp_path: Path, fake_rasa: Path) -> None:
    models = tmp_path / "models"
    model = train_if_needed(project_dir=project, models_dir=models, rasa_bin=fake_rasa)
    assert model.exists()
    assert model.name == f"nlu-{inputs_hash(project)}.tar.gz"
    assert len(calls(tmp_path)) == 1
    assert calls(tmp_path)[0].startswith("train nlu")
    assert calls(tmp_path)[0].endswith("telemetry=false")

    again = train_if_needed(project_dir=project, models_dir=models, rasa_bin=fake_rasa)
    assert again == model
    assert len(calls(tmp_path)) == 1  # unchanged inputs: no retraining

    nlu = project / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text(encoding="utf-8") + "    - 屋企要张新床\n", encoding="utf-8")
    changed = train_if_needed(project_dir=project, models_dir=models, rasa_bin=fake_rasa)
    assert changed != model
    assert changed.exists()
    assert len(calls(tmp_path)) == 2


def test_failed_training_leaves_no_model_and_says_why(
    project: Path, tmp_path: Path, fake_rasa: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_RASA_FAIL", "1")
    models = tmp_path / "models"
    with pytest.raises(RasaError, match="broken pipeline"):
        train_if_needed(project_dir=project, models_dir=models, rasa_bin=fake_rasa)
    assert list(models.glob("*.tar.gz")) == []


def test_missing_rasa_is_a_clear_error(project: Path, tmp_path: Path) -> None:
    with pytest.raises(RasaError, match="not installed"):
        train_if_needed(project_dir=project, models_dir=tmp_path / "m", rasa_bin=tmp_path / "nope" / "rasa")


async def test_managed_rasa_starts_answers_and_stops(project: Path, tmp_path: Path, fake_rasa: Path) -> None:
    port = free_port()
    async with managed_rasa(
        rasa_bin=fake_rasa, project_dir=project, models_dir=tmp_path / "models", port=port, token="s3cret"
    ) as url:
        assert url == f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/status", params={"token": "s3cret"}) as resp:
                assert resp.status == 200
                assert (await resp.json())["model_file"].endswith(f"nlu-{inputs_hash(project)}.tar.gz")
    run_call = next(c for c in calls(tmp_path) if c.startswith("run"))
    assert "--enable-api" in run_call and "-i 127.0.0.1" in run_call and "telemetry=false" in run_call
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"http://127.0.0.1:{port}/status"):
                pass


async def test_rasa_that_dies_at_startup_reports_its_log(tmp_path: Path, fake_rasa: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_RASA_FAIL", "1")
    model = tmp_path / "m.tar.gz"
    model.write_bytes(b"x")
    process = RasaProcess(rasa_bin=fake_rasa, model=model, port=free_port(), token="t", startup_timeout=20)
    with pytest.raises(RasaError, match="model could not be loaded"):
        await process.start()
    assert not process.running
