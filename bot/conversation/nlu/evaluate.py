"""`python -m bot nlu eval`: train on nlu_data/data, evaluate on the held-out set over Rasa's HTTP API.

Prints intent accuracy and macro-F1, per-intent precision/recall/F1, the confusion matrix, entity F1 per entity,
category-suggestion accuracy, the out-of-scope → case rate, HTTP parse latency, a TF-IDF baseline side by side
and the fallback threshold sweep; the last line is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import re
import secrets
import socket
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bot.conversation.dialogue.slots import read_beneficiary, read_items
from bot.conversation.nlu.normalize import suggest_category
from bot.conversation.nlu.postprocess import finalize_entities, normalize_value
from bot.conversation.nlu.rasa import RasaNLU, to_parse
from bot.conversation.nlu.types import CASE_INTENTS, ENTITIES, FALLBACK_INTENT, INTENTS, Entity
from bot.ops.rasa_service import DEFAULT_MODELS_DIR, DEFAULT_PROJECT_DIR, DEFAULT_RASA_BIN, managed_rasa

TARGETS: dict[str, tuple[str, float]] = {
    "intent_accuracy": (">=", 0.95),
    "macro_f1": (">=", 0.93),
    "oos_case_rate": ("<=", 0.02),
    "town_f1": (">=", 0.95),
    "phone_f1": (">=", 0.98),
    "case_no_f1": (">=", 0.98),
    "parse_p95_ms": ("<=", 30.0),
}
SWEEP = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<name>[^)]+)\)|(?P<json>\{[^}]*\}))")


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    entities: tuple[tuple[str, str], ...] = ()  # (entity, normalised gold value)
    category: str | None = None


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 1.0 if denominator == 0 else 2 * self.tp / denominator


def parse_annotated(line: str) -> tuple[str, list[tuple[str, str]]]:
    """Rasa's `[text](entity)` / `[text]{"entity": .., "value": ..}` markup → plain text and (entity, raw value)."""
    entities: list[tuple[str, str]] = []

    def replace(match: re.Match[str]) -> str:
        text = match.group("text")
        if match.group("name"):
            entities.append((match.group("name"), text))
        else:
            spec = json.loads(match.group("json"))
            entities.append((spec["entity"], str(spec.get("value", text))))
        return text

    return _ANNOTATION.sub(replace, line), entities


def load_examples(path: Path) -> list[Example]:
    """Intent examples from a Rasa NLU YAML file (synonyms, lookups and regexes are skipped)."""
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    examples: list[Example] = []
    for block in document.get("nlu") or ():
        if "intent" not in block:
            continue
        category = (block.get("metadata") or {}).get("category")
        for raw_line in str(block.get("examples") or "").splitlines():
            line = raw_line.strip()
            if not line.startswith("- "):
                continue
            text, raw_entities = parse_annotated(line[2:].strip())
            gold: list[tuple[str, str]] = []
            for entity, value in raw_entities:
                normalised = normalize_value(entity, value)
                if normalised is None:
                    raise ValueError(f"{path}: gold {entity} {value!r} does not normalise in {text!r}")
                gold.append((entity, normalised))
            examples.append(Example(text, block["intent"], tuple(gold), category))
    return examples


def load_training(project_dir: Path) -> list[Example]:
    examples: list[Example] = []
    for path in sorted((Path(project_dir) / "data").rglob("*.yml")):
        examples += load_examples(path)
    return examples


def fallback_threshold(project_dir: Path) -> float:
    config = yaml.safe_load((Path(project_dir) / "config.yml").read_text(encoding="utf-8"))
    for component in config.get("pipeline") or ():
        if component.get("name") == "FallbackClassifier":
            return float(component.get("threshold", 0.3))
    return 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Prediction:
    example: Example
    intent: str  # the model's top intent (ignoring nlu_fallback)
    confidence: float
    fell_back: bool
    entities: tuple[Entity, ...]  # after post-processing
    raw_entities: tuple[tuple[str, str], ...]  # Rasa's own, normalised, without rule additions
    latency_ms: float
    extractors: tuple[str, ...] = field(default=())


async def predict_all(*, rasa_url: str, token: str, examples: list[Example]) -> list[Prediction]:
    predictions: list[Prediction] = []
    async with aiohttp.ClientSession() as session:
        client = RasaNLU(base_url=rasa_url, token=token, session=session, timeout=10.0)
        if not await client.ready():
            raise RuntimeError(f"Rasa at {rasa_url} is not ready")
        for text in ("预热", "你好", "路灯坏了"):  # warm-up, not measured
            await client.parse_raw(text)
        for example in examples:
            started = time.perf_counter()
            payload = await client.parse_raw(example.text)
            latency = (time.perf_counter() - started) * 1000
            parse = to_parse(example.text, payload)
            ranking = [(name, conf) for name, conf in parse.ranking if name != FALLBACK_INTENT]
            intent, confidence = ranking[0] if ranking else (parse.intent, parse.confidence)
            raw = finalize_entities(
                example.text,
                (
                    Entity(str(e.get("entity")), str(e.get("value")), str(e.get("value")))
                    for e in payload.get("entities") or ()
                ),
                add_rule_entities=False,
            )
            predictions.append(
                Prediction(
                    example=example,
                    intent=intent,
                    confidence=confidence,
                    fell_back=parse.intent == FALLBACK_INTENT,
                    entities=parse.entities,
                    raw_entities=tuple((e.entity, e.value) for e in raw),
                    latency_ms=latency,
                    extractors=tuple(str(e.get("extractor")) for e in payload.get("entities") or ()),
                )
            )
    return predictions


def intent_report(gold: list[str], predicted: list[str]) -> dict[str, Any]:
    # scikit-learn is heavy and needed only by the evaluation command, not by the bot: imported on use
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = [i for i in INTENTS if i in set(gold) | set(predicted)]
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=labels, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
        "labels": labels,
        "per_intent": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusion": confusion_matrix(gold, predicted, labels=labels).tolist(),
    }


def entity_counts(pairs: list[tuple[set[tuple[str, str]], set[tuple[str, str]]]]) -> dict[str, Counts]:
    counts = {name: Counts() for name in ENTITIES}
    for gold, predicted in pairs:
        for name in ENTITIES:
            g = {v for e, v in gold if e == name}
            p = {v for e, v in predicted if e == name}
            counts[name].tp += len(g & p)
            counts[name].fp += len(p - g)
            counts[name].fn += len(g - p)
    return counts


def case_slots(p: Prediction) -> dict[str, set[str]] | None:
    """Item and beneficiary as a case records them for one gold wish or project message (None for other intents):
    the dialogue's reading of the model's entities (`dialogue.slots.read_items`: the things of one request, junk
    spans and repeats dropped; the beneficiary of a wish, backed by the kin-word finder, none for a project)."""
    kind = p.example.intent
    if kind not in CASE_INTENTS:
        return None
    wish = kind == "micro_wish"
    model_items = [e.value for e in p.entities if e.entity == "item"]
    items = set(read_items(p.example.text, model_items, wish=wish).items)
    ben = next((e.value for e in p.entities if e.entity == "beneficiary"), None)
    # several persons named together are recorded together ("孙仔、孙女"): each is one value
    bens = {b for b in (read_beneficiary(p.example.text, ben) or "").split("、") if b and wish}
    return {"item": items, "beneficiary": bens}


def _case_slot_pairs(predictions: list[Prediction]) -> Iterator[tuple[Prediction, str, set[str], set[str]]]:
    """(prediction, slot, gold values, recorded values) for each slot of the gold wish and project messages."""
    for p in predictions:
        recorded = case_slots(p)
        if recorded is None:
            continue
        for name, predicted in recorded.items():
            yield p, name, {v for e, v in p.example.entities if e == name}, predicted


def case_slot_counts(predictions: list[Prediction]) -> dict[str, Counts]:
    """Item and beneficiary F1 as a case records them (`case_slots`), on the gold wish and project messages."""
    counts = {"item": Counts(), "beneficiary": Counts()}
    for _, name, gold, predicted in _case_slot_pairs(predictions):
        counts[name].tp += len(gold & predicted)
        counts[name].fp += len(predicted - gold)
        counts[name].fn += len(gold - predicted)
    return counts


def case_slot_errors(predictions: list[Prediction]) -> list[dict[str, Any]]:
    """The wish and project messages whose recorded item or beneficiary differs from the gold (dev sets only:
    `seal` drops them for a held-out set)."""
    return [
        {
            "text": p.example.text,
            "slot": name,
            "gold": sorted(gold),
            "predicted": sorted(predicted),
            "model": sorted(e.value for e in p.entities if e.entity == name),
        }
        for p, name, gold, predicted in _case_slot_pairs(predictions)
        if gold != predicted
    ]


def baseline(train: list[Example], test: list[Example]) -> dict[str, Any]:
    """TF-IDF character n-grams (1–3) + a linear SVM, trained on the same training data."""
    # scikit-learn is heavy and needed only by the evaluation command, not by the bot: imported on use
    from sklearn.feature_extraction.text import TfidfVectorizer

    # lazy: scikit-learn is heavy; only the baseline comparison of `nlu eval` needs it
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC  # lazy: as above

    model = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True), LinearSVC(C=1.0)
    )
    model.fit([e.text for e in train], [e.intent for e in train])
    predicted = [str(p) for p in model.predict([e.text for e in test])]
    report = intent_report([e.intent for e in test], predicted)
    oos = [p for e, p in zip(test, predicted, strict=True) if e.intent == "out_of_scope"]
    report["oos_case_rate"] = sum(p in CASE_INTENTS for p in oos) / len(oos) if oos else 0.0
    return report


def compute(predictions: list[Prediction], *, train: list[Example], threshold: float) -> dict[str, Any]:
    examples = [p.example for p in predictions]
    gold = [e.intent for e in examples]
    report = intent_report(gold, [p.intent for p in predictions])

    final = entity_counts(
        [(set(p.example.entities), {(e.entity, e.value) for e in p.entities}) for p in predictions]
    )
    raw = entity_counts([(set(p.example.entities), set(p.raw_entities)) for p in predictions])
    recorded = case_slot_counts(predictions)

    categorised = [p for p in predictions if p.example.category]
    category_hits = [
        suggest_category(
            p.example.intent, p.example.text, next((e.value for e in p.entities if e.entity == "item"), None)
        )
        == p.example.category
        for p in categorised
    ]

    def oos_case_rate(at: float) -> float:
        oos = [p for p in predictions if p.example.intent == "out_of_scope"]
        starts = [p for p in oos if p.intent in CASE_INTENTS and p.confidence >= at]
        return len(starts) / len(oos) if oos else 0.0

    sweep = []
    for at in sorted({*SWEEP, threshold}):
        covered = [p for p in predictions if p.confidence >= at]
        cases = [p for p in predictions if p.example.intent in CASE_INTENTS]
        sweep.append(
            {
                "threshold": at,
                "coverage": len(covered) / len(predictions),
                "accuracy_covered": (
                    sum(p.intent == p.example.intent for p in covered) / len(covered) if covered else 0.0
                ),
                "correct_and_confident": sum(p.intent == p.example.intent for p in covered)
                / len(predictions),
                "cases_asked_to_clarify": (
                    sum(p.confidence < at for p in cases) / len(cases) if cases else 0.0
                ),
                "oos_case_rate": oos_case_rate(at),
            }
        )

    latencies = [p.latency_ms for p in predictions]
    return {
        "n_train": len(train),
        "n_test": len(predictions),
        "train_sizes": dict(Counter(e.intent for e in train)),
        "test_sizes": dict(Counter(gold)),
        "threshold": threshold,
        "intent": report,
        "entities": {name: vars(c) | {"f1": c.f1} for name, c in final.items()},
        "entities_rasa_only": {name: vars(c) | {"f1": c.f1} for name, c in raw.items()},
        "case_slots": {name: vars(c) | {"f1": c.f1} for name, c in recorded.items()},
        "category_accuracy": sum(category_hits) / len(category_hits) if category_hits else 0.0,
        "category_n": len(category_hits),
        "oos_case_rate": oos_case_rate(threshold),
        "fallback_rate": sum(p.fell_back for p in predictions) / len(predictions),
        "latency_p50_ms": statistics.median(latencies),
        "latency_p95_ms": _percentile(latencies, 0.95),
        "baseline": baseline(train, examples),
        "sweep": sweep,
        "errors": [
            {
                "text": p.example.text,
                "gold": p.example.intent,
                "predicted": p.intent,
                "confidence": round(p.confidence, 3),
            }
            for p in predictions
            if p.intent != p.example.intent
        ],
        "slot_errors": case_slot_errors(predictions),
    }


def summary(result: dict[str, Any]) -> dict[str, float]:
    """The headline figures (issue 3's JSON line)."""
    return {
        "intent_accuracy": round(result["intent"]["accuracy"], 4),
        "macro_f1": round(result["intent"]["macro_f1"], 4),
        "baseline_accuracy": round(result["baseline"]["accuracy"], 4),
        "oos_case_rate": round(result["oos_case_rate"], 4),
        "town_f1": round(result["entities"]["town"]["f1"], 4),
        "phone_f1": round(result["entities"]["phone"]["f1"], 4),
        "case_no_f1": round(result["entities"]["case_no"]["f1"], 4),
        "category_accuracy": round(result["category_accuracy"], 4),
        "parse_p95_ms": round(result["latency_p95_ms"], 2),
    }


def unmet_targets(figures: dict[str, float]) -> list[str]:
    missed = []
    for key, (op, bound) in TARGETS.items():
        value = figures[key]
        if (op == ">=" and value < bound) or (op == "<=" and value > bound):
            missed.append(f"{key} {value} (target {op} {bound})")
    if figures["intent_accuracy"] < figures["baseline_accuracy"]:
        missed.append("intent_accuracy below the baseline")
    return missed


async def evaluate_async(
    *,
    rasa_url: str,
    token: str,
    project_dir: Path = DEFAULT_PROJECT_DIR,
    heldout: Path | None = None,
) -> dict[str, Any]:
    """Evaluate on `heldout` (default: the held-out set). Per-utterance errors are kept in the result only for
    another file (a development set): the held-out set's individual errors are never exposed, so it stays blind."""
    test_path = Path(heldout or heldout_path(project_dir))
    test = load_examples(test_path)
    train = load_training(project_dir)
    predictions = await predict_all(rasa_url=rasa_url, token=token, examples=test)
    result = compute(predictions, train=train, threshold=fallback_threshold(project_dir))
    result["summary"] = summary(result)
    return seal(result, test_path=test_path, project_dir=project_dir)


def seal(result: dict[str, Any], *, test_path: Path, project_dir: Path) -> dict[str, Any]:
    """Name the test file in the result and, for the held-out set, drop the per-utterance errors."""
    result["test_file"] = Path(test_path).name
    if is_heldout(test_path, project_dir):
        result["errors"] = []
        result["slot_errors"] = []
        result["errors_hidden"] = True
    return result


def heldout_path(project_dir: Path) -> Path:
    return Path(project_dir) / "tests" / "heldout.yml"


# The held-out sets, whose individual errors are never listed: the intent set and the independent slot set
# (written by an annotator who does not write training data; nlu_data/README.md, round 7).
HELDOUT_FILES = ("heldout.yml", "slots_heldout.yml")


def is_heldout(path: Path, project_dir: Path) -> bool:
    """True for the held-out sets — and, so that a copy cannot leak them, for any file whose name says held-out."""
    resolved = Path(path).resolve()
    known = {(Path(project_dir) / "tests" / name).resolve() for name in HELDOUT_FILES}
    return resolved in known or "heldout" in resolved.name.lower().replace("-", "").replace("_", "")


def evaluate(*, rasa_url: str, token: str, project_dir: Path = DEFAULT_PROJECT_DIR) -> dict[str, Any]:
    """Evaluate an already running Rasa server (blocking; runs its own event loop in a thread if needed)."""
    coroutine = evaluate_async(rasa_url=rasa_url, token=token, project_dir=project_dir)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


# --- printing ------------------------------------------------------------------------------------------------


def render(result: dict[str, Any]) -> str:
    out: list[str] = []
    intent, base = result["intent"], result["baseline"]
    out.append(
        f"NLU evaluation — train {result['n_train']} examples, "
        f"test {result.get('test_file', 'heldout.yml')}: {result['n_test']} utterances"
    )
    out.append(f"fallback threshold {result['threshold']:.2f}")
    out.append("")
    out.append(f"{'':24}{'Rasa pipeline':>14}{'baseline':>12}")
    out.append(f"{'intent accuracy':24}{intent['accuracy']:>14.3f}{base['accuracy']:>12.3f}")
    out.append(f"{'macro-F1':24}{intent['macro_f1']:>14.3f}{base['macro_f1']:>12.3f}")
    out.append(f"{'out-of-scope → case':24}{result['oos_case_rate']:>14.3f}{base['oos_case_rate']:>12.3f}")
    out.append("  (baseline: TF-IDF char 1–3-grams + LinearSVC, no threshold)")
    out.append("")
    out.append(f"{'intent':16}{'P':>7}{'R':>7}{'F1':>7}{'n':>5}   baseline F1")
    for label, row in intent["per_intent"].items():
        b = base["per_intent"].get(label, {}).get("f1", 0.0)
        out.append(
            f"{label:16}{row['precision']:>7.3f}{row['recall']:>7.3f}{row['f1']:>7.3f}{row['support']:>5}   {b:.3f}"
        )
    out.append("")
    out.append("confusion matrix (rows gold, columns predicted):")
    labels = intent["labels"]
    out.append("    " + "".join(f"{i:>4}" for i in range(len(labels))))
    for i, (label, row) in enumerate(zip(labels, intent["confusion"], strict=True)):
        out.append(f"{i:>3} " + "".join(f"{v:>4}" for v in row) + f"  {label}")
    out.append("")
    out.append(f"{'entity':14}{'F1':>7}{'tp':>5}{'fp':>5}{'fn':>5}   Rasa alone F1")
    for name, row in result["entities"].items():
        alone = result["entities_rasa_only"][name]["f1"]
        out.append(f"{name:14}{row['f1']:>7.3f}{row['tp']:>5}{row['fp']:>5}{row['fn']:>5}   {alone:.3f}")
    out.append(
        "  (exact value after normalisation; 'Rasa alone' leaves out the rule-based town/phone/case_no finder)"
    )
    slots = result.get("case_slots") or {}
    if slots:
        out.append(
            "as a case records them (the dialogue's reading, wish and project messages): "
            + ", ".join(
                f"{name} F1 {row['f1']:.3f} (tp {row['tp']}, fp {row['fp']}, fn {row['fn']})"
                for name, row in slots.items()
            )
        )
    out.append("")
    out.append(
        f"category suggestion accuracy {result['category_accuracy']:.3f} over {result['category_n']} cases"
    )
    out.append(
        f"parse latency over HTTP: p50 {result['latency_p50_ms']:.1f} ms, p95 {result['latency_p95_ms']:.1f} ms"
    )
    out.append(f"answered nlu_fallback: {result['fallback_rate']:.3f}")
    out.append("")
    out.append("fallback threshold sweep:")
    out.append(
        f"{'threshold':>10}{'coverage':>10}{'acc(cov)':>10}{'correct':>9}{'cases asked':>13}{'oos→case':>10}"
    )
    for row in result["sweep"]:
        mark = "  <- config.yml" if abs(row["threshold"] - result["threshold"]) < 1e-9 else ""
        out.append(
            f"{row['threshold']:>10.2f}{row['coverage']:>10.3f}{row['accuracy_covered']:>10.3f}"
            f"{row['correct_and_confident']:>9.3f}{row['cases_asked_to_clarify']:>13.3f}{row['oos_case_rate']:>10.3f}{mark}"
        )
    if result.get("errors_hidden"):
        out.append("")
        out.append("(per-utterance errors of the held-out set are not shown; use --test-file with a dev set)")
    elif result["errors"]:
        out.append("")
        out.append(f"misclassified ({len(result['errors'])}):")
        for err in result["errors"]:
            out.append(f"  {err['gold']:>14} → {err['predicted']:<14} {err['confidence']:.2f}  {err['text']}")
    if not result.get("errors_hidden") and result.get("slot_errors"):
        out.append("")
        out.append(f"item/beneficiary as recorded, differing from the gold ({len(result['slot_errors'])}):")
        for err in result["slot_errors"]:
            out.append(
                f"  {err['slot']:<11} gold {'/'.join(err['gold']) or '-'} → {'/'.join(err['predicted']) or '-'}"
                f"  (model {'/'.join(err['model']) or '-'})  {err['text']}"
            )
    missed = unmet_targets(result["summary"])
    out.append("")
    out.append("targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return "\n".join(out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    if args.rasa_url:
        return await evaluate_async(
            rasa_url=args.rasa_url, token=args.token, project_dir=args.project_dir, heldout=args.test_file
        )
    token = secrets.token_urlsafe(16)
    async with managed_rasa(
        rasa_bin=args.rasa_bin,
        project_dir=args.project_dir,
        models_dir=args.models_dir,
        port=args.port or _free_port(),
        token=token,
    ) as url:
        return await evaluate_async(
            rasa_url=url, token=token, project_dir=args.project_dir, heldout=args.test_file
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot nlu eval", description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", type=Path, default=DEFAULT_PROJECT_DIR)
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    parser.add_argument("--rasa-bin", type=Path, default=DEFAULT_RASA_BIN)
    parser.add_argument("--port", type=int, default=0, help="port for the managed Rasa (default: a free one)")
    parser.add_argument(
        "--rasa-url", help="evaluate an already running Rasa instead of training and starting one"
    )
    parser.add_argument("--token", default="", help="auth token of --rasa-url")
    parser.add_argument(
        "--test-file",
        type=Path,
        default=None,
        help="evaluate on this file instead of the held-out set (e.g. nlu_data/tests/dev.yml); "
        "only then are individual errors listed",
    )
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args))
    print(render(result))
    print(json.dumps(result["summary"], ensure_ascii=False))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
