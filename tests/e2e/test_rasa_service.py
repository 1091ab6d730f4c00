"""The managed Rasa: train only when the inputs changed, start, wait for readiness, stop."""

from __future__ import annotations

import shutil
import socket
import sys
import textwrap
from pathlib import Path

import aiohttp
import pytest

from bot.ops.rasa_service import RasaError, RasaProcess, inputs_hash, managed_rasa, train_if_needed

PROJECT = Path(__file__).resolve().parents[2] / "nlu_data"

# A stand-in for the `rasa` executable (the real one needs minutes to train): it logs each call, and
# `train nlu --out DIR --fixed-model-name NAME` writes DIR/NAME.tar.gz; `run` serves /status like Rasa.
FAKE_RASA = textwrap.dedent(
    f"""\
    #!{sys.executable}
    import json, os, sys
    from pathlib import Path
    args = sys.argv[1:]
    with open(os.environ.get("FAKE_RASA_LOG", "/dev/null"), "a") as log:
        log.write(" ".join(args) + " cwd=" + os.getcwd()
                  + " telemetry=" + os.environ.get("RASA_TELEMETRY_ENABLED", "") + "\\n")
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
        token = next(a.split("=", 1)[1] for a in args if a.startswith("--auth-token="))
        port, model = int(args[args.index("-p") + 1]), args[args.index("-m") + 1]
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


def test_own_components_are_training_inputs(project: Path) -> None:
    before = inputs_hash(project)
    cache = project / "components" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "ensemble.cpython-310.pyc").write_bytes(b"compiled")
    assert inputs_hash(project) == before  # byte code is not an input
    component = project / "components" / "ensemble.py"
    component.write_text(component.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert inputs_hash(project) != before


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


def test_old_models_are_pruned_keeping_two_spares(project: Path, tmp_path: Path, fake_rasa: Path) -> None:
    import os

    models = tmp_path / "models"
    made = []
    nlu = project / "data" / "nlu.yml"
    for i in range(5):
        nlu.write_text(nlu.read_text(encoding="utf-8") + f"    - 屋企要张新床{i}\n", encoding="utf-8")
        made.append(train_if_needed(project_dir=project, models_dir=models, rasa_bin=fake_rasa))
        os.utime(made[-1], (1_700_000_000 + i, 1_700_000_000 + i))  # distinct ages
    assert sorted(p.name for p in models.glob("nlu-*.tar.gz")) == sorted(p.name for p in made[-3:])


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


async def test_rasa_that_dies_at_startup_reports_its_log(
    tmp_path: Path, fake_rasa: Path, monkeypatch
) -> None:
    monkeypatch.setenv("FAKE_RASA_FAIL", "1")
    model = tmp_path / "m.tar.gz"
    model.write_bytes(b"x")
    process = RasaProcess(rasa_bin=fake_rasa, model=model, port=free_port(), token="t", startup_timeout=20)
    with pytest.raises(RasaError, match="model could not be loaded"):
        await process.start()
    assert not process.running


async def test_rasa_runs_in_the_project_folder_so_its_components_import(
    tmp_path: Path, fake_rasa: Path
) -> None:
    from bot.ops.rasa_service import DEFAULT_PROJECT_DIR

    model = tmp_path / "m.tar.gz"
    model.write_bytes(b"x")
    process = RasaProcess(rasa_bin=fake_rasa, model=model, port=free_port(), token="t", startup_timeout=20)
    await process.start()
    await process.stop()
    run_call = next(c for c in calls(tmp_path) if c.startswith("run"))
    assert f"cwd={DEFAULT_PROJECT_DIR}" in run_call


# --- the project's own ensemble component, in the Rasa environment -------------------------------------------

RASA_PYTHON = Path(__file__).resolve().parents[2] / ".venv-rasa" / "bin" / "python"

ENSEMBLE_SCRIPT = textwrap.dedent(
    """\
    import json, sys, tempfile
    from pathlib import Path
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from components.ensemble import CharNgramEnsembleClassifier

    examples = {
        "micro_wish": ["家里老人想要一辆轮椅", "孩子上网课需要一台电脑", "阿婆想要一床棉被", "想申请米和油"],
        "micro_project": ["村口的路灯坏了", "巷子里的路坑坑洼洼", "公园的长凳烂了", "下水道堵住了"],
        "greet": ["你好", "早晨", "哈喽", "你好呀"],
    }
    data = TrainingData([Message.build(text=t, intent=i) for i, ts in examples.items() for t in ts])
    storage = LocalModelStorage(Path(tempfile.mkdtemp()))
    resource = Resource("ensemble")
    context = ExecutionContext(GraphSchema({}), "test")
    config = {"diet_weight": float(sys.argv[1])}
    trained = CharNgramEnsembleClassifier.create(
        {**CharNgramEnsembleClassifier.get_default_config(), **config}, storage, resource, context)
    trained.train(data)
    loaded = CharNgramEnsembleClassifier.load(
        {**CharNgramEnsembleClassifier.get_default_config(), **config}, storage, resource, context)
    message = Message.build(text="路灯坏了好几天")
    # what DIET (the classifier before it) said: confidently wrong
    message.set("intent", {"name": "micro_wish", "confidence": 0.9}, add_to_output=True)
    message.set("intent_ranking", [{"name": "micro_wish", "confidence": 0.9},
                                   {"name": "micro_project", "confidence": 0.1}], add_to_output=True)
    alone = Message.build(text="路灯坏了好几天")  # no ranking before it: the n-gram model alone
    loaded.process([message, alone])
    print(json.dumps({k: m.as_dict(only_output_properties=True) for k, m in (("with", message), ("alone", alone))},
                     ensure_ascii=False))
    """
)


def run_ensemble(weight: float) -> dict:
    import json
    import subprocess

    from bot.ops.rasa_service import DEFAULT_PROJECT_DIR, rasa_env

    if not RASA_PYTHON.exists():
        pytest.skip("the Rasa environment (.venv-rasa) is not installed")
    proc = subprocess.run(
        [str(RASA_PYTHON), "-c", ENSEMBLE_SCRIPT, str(weight)],
        cwd=DEFAULT_PROJECT_DIR,
        env=rasa_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.rasa  # loads Rasa and TensorFlow in .venv-rasa (~20 s): make test, not make test-fast
def test_ensemble_trains_persists_and_lets_the_ngram_model_overrule_diet() -> None:
    out = run_ensemble(0.3)
    with_diet, alone = out["with"], out["alone"]
    assert with_diet["intent"]["name"] == "micro_project"  # 0.3 × DIET's 0.9 is outvoted by the n-grams
    ranking = {r["name"]: r["confidence"] for r in with_diet["intent_ranking"]}
    assert ranking.keys() == {"micro_wish", "micro_project", "greet"}
    assert sum(ranking.values()) == pytest.approx(1.0)
    parts = with_diet["intent_ensemble"]
    for name, confidence in ranking.items():
        expected = 0.3 * parts["diet"].get(name, 0.0) + 0.7 * parts["ngram"][name]
        assert confidence == pytest.approx(expected, abs=1e-3)
    assert alone["intent"]["name"] == "micro_project"
    assert alone["intent"]["confidence"] == pytest.approx(parts["ngram"]["micro_project"], abs=1e-3)


@pytest.mark.rasa  # loads Rasa and TensorFlow in .venv-rasa (~20 s): make test, not make test-fast
def test_ensemble_with_full_diet_weight_keeps_diets_answer() -> None:
    out = run_ensemble(1.0)
    assert out["with"]["intent"] == {"name": "micro_wish", "confidence": pytest.approx(0.9)}


# --- the HTTP client and the degraded mode -------------------------------------------------------------------

from aiohttp import web  # noqa: E402

from bot.conversation.nlu import FallbackNLU, KeywordNLU, NLUUnavailable, RasaNLU  # noqa: E402

RASA_ANSWER = {
    "text": "我住樟木头想要两台风扇",
    "intent": {"name": "micro_wish", "confidence": 0.97},
    "intent_ranking": [
        {"name": "micro_wish", "confidence": 0.97},
        {"name": "micro_project", "confidence": 0.02},
    ],
    "entities": [
        {"entity": "town", "start": 2, "end": 5, "value": "樟木头", "extractor": "DIETClassifier"},
        {"entity": "quantity", "start": 7, "end": 9, "value": "两台", "extractor": "DIETClassifier"},
        {"entity": "item", "start": 9, "end": 11, "value": "风扇", "extractor": "DIETClassifier"},
        {"entity": "town", "start": 2, "end": 5, "value": "樟木头", "extractor": "RegexEntityExtractor"},
    ],
}


class FakeRasa:
    """An aiohttp app answering like Rasa, with switchable failures."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.parses = 0
        self.tokens: list[str | None] = []

    async def parse(self, request: web.Request) -> web.Response:
        self.parses += 1
        self.tokens.append(request.query.get("token"))
        if self.mode == "500":
            return web.json_response({"error": "boom"}, status=500)
        if self.mode == "slow":
            import asyncio

            await asyncio.sleep(1)
        body = await request.json()
        return web.json_response(RASA_ANSWER | {"text": body["text"]})

    async def status(self, request: web.Request) -> web.Response:
        if self.mode != "ok":
            return web.json_response({"error": "down"}, status=503)
        return web.json_response({"model_file": "nlu-x.tar.gz"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/model/parse", self.parse)
        app.router.add_get("/status", self.status)
        return app


async def test_rasa_client_normalises_entities_and_sends_token(aiohttp_server) -> None:
    fake = FakeRasa()
    server = await aiohttp_server(fake.app())
    async with aiohttp.ClientSession() as session:
        nlu = RasaNLU(base_url=str(server.make_url("/")), token="tok", session=session)
        assert await nlu.ready()
        parse = await nlu.parse("我住樟木头想要两台风扇")
    assert fake.tokens == ["tok"]
    assert (parse.intent, parse.source) == ("micro_wish", "rasa")
    assert parse.first("town") == "樟木头镇"
    assert parse.all("town") == ["樟木头镇"]  # reported twice by Rasa, once here
    assert parse.first("quantity") == "2"
    assert parse.first("item") == "风扇"
    assert parse.ranking[0] == ("micro_wish", 0.97)


@pytest.mark.parametrize("mode", ["500", "slow"])
async def test_rasa_errors_raise_nlu_unavailable(aiohttp_server, mode: str) -> None:
    fake = FakeRasa()
    fake.mode = mode
    server = await aiohttp_server(fake.app())
    async with aiohttp.ClientSession() as session:
        nlu = RasaNLU(base_url=str(server.make_url("/")), token="t", session=session, timeout=0.3)
        with pytest.raises(NLUUnavailable):
            await nlu.parse("你好")
        assert not await nlu.ready()


async def test_unreachable_rasa_raises_nlu_unavailable() -> None:
    async with aiohttp.ClientSession() as session:
        nlu = RasaNLU(base_url=f"http://127.0.0.1:{free_port()}", token="t", session=session)
        with pytest.raises(NLUUnavailable):
            await nlu.parse("你好")


async def test_fallback_degrades_then_recovers_after_the_pause(aiohttp_server) -> None:
    fake = FakeRasa()
    server = await aiohttp_server(fake.app())
    now = [1000.0]
    async with aiohttp.ClientSession() as session:
        primary = RasaNLU(base_url=str(server.make_url("/")), token="t", session=session, timeout=0.3)
        nlu = FallbackNLU(primary=primary, fallback=KeywordNLU(), retry_after=10, clock=lambda: now[0])

        assert (await nlu.parse("想要轮椅")).source == "rasa"
        assert not nlu.degraded

        fake.mode = "500"
        parse = await nlu.parse("村口路灯坏了 住厚街")
        assert parse.source == "keyword"
        assert parse.intent == "micro_project"
        assert parse.first("town") == "厚街镇"
        assert nlu.degraded and "500" in (nlu.last_error or "")

        calls_before = fake.parses
        fake.mode = "ok"
        now[0] += 5  # within the pause: Rasa is not asked
        assert (await nlu.parse("查询进度")).source == "keyword"
        assert fake.parses == calls_before

        now[0] += 6  # pause over: probe Rasa again
        assert (await nlu.parse("想要轮椅")).source == "rasa"
        assert not nlu.degraded
