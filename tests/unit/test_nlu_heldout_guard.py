"""The held-out sets stay blind: `nlu eval` never keeps or prints their per-utterance errors — the intent
held-out set and the independent slot held-out set alike (nlu_data/README.md, round 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.conversation.nlu.evaluate import is_heldout, seal
from bot.ops.rasa_service import DEFAULT_PROJECT_DIR

TESTS = Path(DEFAULT_PROJECT_DIR) / "tests"


@pytest.mark.parametrize("name", ["heldout.yml", "slots_heldout.yml"])
def test_the_heldout_sets_are_recognised(name: str) -> None:
    assert (TESTS / name).exists()
    assert is_heldout(TESTS / name, DEFAULT_PROJECT_DIR)
    # the same file reached by another spelling of its path, or a copy elsewhere
    assert is_heldout(TESTS / ".." / "tests" / name, DEFAULT_PROJECT_DIR)
    assert is_heldout(Path("/tmp") / name, DEFAULT_PROJECT_DIR)


@pytest.mark.parametrize(
    "name", ["dev.yml", "slots_dev.yml", "slots_dev2.yml", "slots_dev3.yml", "slots_dev4.yml"]
)
def test_the_dev_sets_are_not(name: str) -> None:
    assert not is_heldout(TESTS / name, DEFAULT_PROJECT_DIR)


@pytest.mark.parametrize("name", ["heldout.yml", "slots_heldout.yml"])
def test_sealing_a_heldout_result_drops_every_per_utterance_error(name: str) -> None:
    result = {
        "errors": [{"text": "x", "gold": "micro_wish", "predicted": "greet", "confidence": 0.9}],
        "slot_errors": [{"text": "x", "gold": ["轮椅"], "predicted": []}],
    }
    sealed = seal(result, test_path=TESTS / name, project_dir=DEFAULT_PROJECT_DIR)
    assert sealed["errors"] == [] and sealed["slot_errors"] == [] and sealed["errors_hidden"]
    assert sealed["test_file"] == name


def test_sealing_a_dev_result_keeps_its_errors() -> None:
    result = {"errors": [{"text": "x"}], "slot_errors": [{"text": "x"}]}
    sealed = seal(result, test_path=TESTS / "slots_dev3.yml", project_dir=DEFAULT_PROJECT_DIR)
    assert sealed["errors"] and sealed["slot_errors"] and not sealed.get("errors_hidden")
