"""The case reading's part-of-speech Viterbi (bot/conversation/nlu/postag.py) against jieba's own: the same
probability and the same path for every wish and project message of the dev sets, and for texts built to reach
the model's corners (runs of characters the dictionary lacks, Latin letters, digits, single characters)."""

from __future__ import annotations

import random
from pathlib import Path

import jieba.posseg
import pytest
from jieba.posseg import char_state_tab_P, emit_P, start_P, trans_P
from jieba.posseg.viterbi import viterbi as jieba_viterbi

from bot.conversation.nlu import postag
from bot.conversation.nlu.evaluate import load_examples

TESTS = Path(__file__).resolve().parents[2] / "nlu_data" / "tests"
DEV_SETS = ("dev.yml", "slots_dev.yml", "slots_dev2.yml", "slots_dev3.yml", "slots_dev4.yml")


def _texts() -> list[str]:
    texts = [e.text for name in DEV_SETS for e in load_examples(TESTS / name)]
    rng = random.Random(20261206)
    pool = "镬棉台雨水篦僵尸车一键通啲嘅咗佢哋冇唔系喺畀俾嚟噉乜嘢嗰度轮倚电饭保牙膏牙刷毛巾"
    texts += ["".join(rng.choice(pool) for _ in range(rng.randint(1, 40))) for _ in range(300)]
    return texts


def _han_runs(text: str) -> list[str]:
    """The runs of Chinese characters a cut hands to the Viterbi (jieba.posseg's re_han_detail blocks)."""
    return [
        blk for blk in jieba.posseg.re_han_detail.split(text) if blk and jieba.posseg.re_han_detail.match(blk)
    ]


def test_the_same_probability_and_path_as_jiebas_viterbi() -> None:
    compared = 0
    for text in _texts():
        for run in _han_runs(text):
            mine = postag.viterbi(run, char_state_tab_P, start_P, trans_P, emit_P)
            theirs = jieba_viterbi(run, char_state_tab_P, start_P, trans_P, emit_P)
            assert mine == theirs, run
            compared += 1
    assert compared > 500


def test_installed_the_tagger_cuts_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = jieba.posseg.POSTokenizer(jieba.Tokenizer())
    texts = _texts()[:200]
    monkeypatch.setattr(jieba.posseg, "viterbi", jieba_viterbi)
    before = [[(p.word, p.flag) for p in tokenizer.cut(t, HMM=True)] for t in texts]
    postag.install()
    assert jieba.posseg.viterbi is postag.viterbi
    assert [[(p.word, p.flag) for p in tokenizer.cut(t, HMM=True)] for t in texts] == before
