"""The held-out evaluation through the real Rasa server, with issue 3's targets asserted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.conversation.nlu.evaluate import (
    TARGETS,
    Example,
    Prediction,
    case_slot_errors,
    compute,
    evaluate_async,
    load_examples,
    load_training,
    render,
    seal,
    summary,
)
from bot.conversation.nlu.types import INTENTS
from bot.ops.rasa_service import DEFAULT_PROJECT_DIR

# The session-trained model served by the real Rasa process (tests/conftest.py: `rasa_url`, RASA_TOKEN).
from tests.helpers import RASA_TOKEN as TOKEN  # noqa: E402


def test_heldout_set_is_separate_and_large_enough() -> None:
    heldout = load_examples(DEFAULT_PROJECT_DIR / "tests" / "heldout.yml")
    training = {e.text for e in load_training(DEFAULT_PROJECT_DIR)}
    assert len(heldout) >= 200
    assert not [e.text for e in heldout if e.text in training]
    cases = [e for e in heldout if e.intent in {"micro_wish", "micro_project"}]
    assert cases and all(e.category for e in cases)


def test_the_independent_slot_sets_are_no_training_input() -> None:
    """slots_dev3, slots_dev4 and slots_heldout share no sentence with the training data or each other (counts
    only: the held-out sentences are never printed)."""
    training = {e.text for e in load_training(DEFAULT_PROJECT_DIR)}
    dev3 = {e.text for e in load_examples(DEFAULT_PROJECT_DIR / "tests" / "slots_dev3.yml")}
    dev4 = {e.text for e in load_examples(DEFAULT_PROJECT_DIR / "tests" / "slots_dev4.yml")}
    heldout = {e.text for e in load_examples(DEFAULT_PROJECT_DIR / "tests" / "slots_heldout.yml")}
    assert len(dev3) >= 100 and len(dev4) >= 200 and len(heldout) >= 200
    overlaps = {
        "dev3": len(dev3 & training),
        "dev4": len(dev4 & training),
        "heldout": len(heldout & training),
        "dev3 & heldout": len(dev3 & heldout),
        "dev4 & heldout": len(dev4 & heldout),
        "dev3 & dev4": len(dev3 & dev4),
    }
    assert overlaps == dict.fromkeys(overlaps, 0)


def test_every_slot_set_is_its_own() -> None:
    """Every slot development and held-out set (the glob: a set added later is checked too) shares at most 2 % of
    its sentences with the training data or with any other set — a short common message may recur (dev 5 and held-out 3 share two), a copied or
    paraphrase-free reuse of a set may not. ``slots_heldout2_b`` is held-out 2's texts annotated a second time, by
    design. Counts only: held-out sentences are never printed."""
    import itertools

    tests = DEFAULT_PROJECT_DIR / "tests"
    training = {e.text for e in load_training(DEFAULT_PROJECT_DIR)}
    sets = {p.name: {e.text for e in load_examples(p)} for p in sorted(tests.glob("slots_*.yml"))}
    assert {"slots_dev8.yml", "slots_heldout5.yml"} <= set(sets)
    too_many = {}
    for name, texts in sets.items():
        assert len(texts) >= 50, name
        if len(texts & training) > len(texts) // 50:
            too_many[name] = len(texts & training)
    for (a, x), (b, y) in itertools.combinations(sets.items(), 2):
        if {a, b} != {"slots_heldout2.yml", "slots_heldout2_b.yml"} and len(x & y) > min(
            len(x), len(y)
        ) // 50:
            too_many[f"{a} & {b}"] = len(x & y)
    assert too_many == {}


def test_dev_set_is_separate_and_covers_every_intent() -> None:
    dev = load_examples(DEFAULT_PROJECT_DIR / "tests" / "dev.yml")
    training = {e.text for e in load_training(DEFAULT_PROJECT_DIR)}
    heldout = {e.text for e in load_examples(DEFAULT_PROJECT_DIR / "tests" / "heldout.yml")}
    assert len(dev) >= 150
    assert {e.intent for e in dev} == set(INTENTS)
    assert not [e.text for e in dev if e.text in training]
    assert not [e.text for e in dev if e.text in heldout]


def _bare(example: Example, intent: str, confidence: float) -> Prediction:
    return Prediction(
        example=example,
        intent=intent,
        confidence=confidence,
        fell_back=False,
        entities=(),
        raw_entities=(),
        latency_ms=5.0,
    )


def _wish_with_a_slot_error() -> Example:
    """A dev wish whose recorded item or beneficiary, read from no model entity at all, differs from its gold."""
    dev = load_examples(DEFAULT_PROJECT_DIR / "tests" / "dev.yml")
    return next(e for e in dev if e.intent == "micro_wish" and case_slot_errors([_bare(e, e.intent, 0.99)]))


def _result_with_one_error(test_path: Path) -> dict[str, Any]:
    train = load_training(DEFAULT_PROJECT_DIR)
    dev = load_examples(DEFAULT_PROJECT_DIR / "tests" / "dev.yml")
    examples = [_wish_with_a_slot_error(), next(e for e in dev if e.intent == "greet")]
    predictions = [_bare(examples[0], examples[0].intent, 0.99), _bare(examples[1], "micro_project", 0.97)]
    result = compute(predictions, train=train, threshold=0.5)
    result["summary"] = summary(result)
    return seal(result, test_path=test_path, project_dir=DEFAULT_PROJECT_DIR)


def test_heldout_errors_are_never_listed_but_dev_errors_are() -> None:
    wrong = next(
        e for e in load_examples(DEFAULT_PROJECT_DIR / "tests" / "dev.yml") if e.intent == "greet"
    ).text
    on_dev = render(_result_with_one_error(DEFAULT_PROJECT_DIR / "tests" / "dev.yml"))
    on_heldout = render(_result_with_one_error(DEFAULT_PROJECT_DIR / "tests" / "heldout.yml"))
    assert wrong in on_dev and "misclassified (1)" in on_dev
    assert wrong not in on_heldout and "misclassified" not in on_heldout
    assert "not shown" in on_heldout
    # the independent slot held-out set is as blind: neither intent nor item/beneficiary errors are listed
    wish = _wish_with_a_slot_error()
    on_slots = render(_result_with_one_error(DEFAULT_PROJECT_DIR / "tests" / "slots_heldout.yml"))
    assert wrong not in on_slots and wish.text not in on_slots and "not shown" in on_slots
    assert wish.text in on_dev and "differing from the gold" in on_dev


def test_training_data_sizes() -> None:
    training = load_training(DEFAULT_PROJECT_DIR)
    sizes = {intent: sum(e.intent == intent for e in training) for intent in {e.intent for e in training}}
    assert sizes["micro_wish"] >= 80 and sizes["micro_project"] >= 80
    assert len(sizes) == 11 and min(sizes.values()) >= 25
    assert 1200 <= len(training) <= 1800


@pytest.fixture(scope="module")
def heldout_result(rasa_url: str) -> dict:  # type: ignore[type-arg]
    """One held-out evaluation through the session's real Rasa server, shared by the target tests below."""
    import asyncio

    return asyncio.run(evaluate_async(rasa_url=rasa_url, token=TOKEN, project_dir=Path(DEFAULT_PROJECT_DIR)))


@pytest.mark.rasa
def test_evaluation_meets_the_targets(heldout_result: dict) -> None:  # type: ignore[type-arg]
    """Issue 3's targets on the held-out set, through the real Rasa server (the session-trained model)."""
    figures, report = heldout_result["summary"], render(heldout_result)
    for key, (op, bound) in TARGETS.items():
        if key.endswith("_ms"):
            continue  # wall-clock targets (parse p95) are measured by `make bench` (python -m bot nlu eval)
        if op == ">=":
            assert figures[key] >= bound, f"{key}={figures[key]}\n{report}"
        else:
            assert figures[key] <= bound, f"{key}={figures[key]}\n{report}"
    assert figures["intent_accuracy"] >= figures["baseline_accuracy"], report  # the model beats the baseline
