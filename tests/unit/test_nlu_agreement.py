"""Inter-annotator agreement (bot/conversation/nlu/agreement.py) on two small annotations of the same texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.conversation.nlu.agreement import NotTheSameTexts, agreement, main

FIRST = """version: "3.1"
nlu:
- intent: micro_wish
  examples: |
    - 我[阿妈](beneficiary)想要[一部](quantity)[轮椅](item)
    - 想申请[米](item)同[油](item)
- intent: micro_project
  examples: |
    - 村口[路灯](item)坏咗 [老人](beneficiary)夜晚唔敢出
"""
# the second annotator: the same beneficiary and quantity, 油 left out, 米油 read as one thing, and a beneficiary in
# a project (not scored: beneficiaries count in wishes only)
SECOND = """version: "3.1"
nlu:
- intent: micro_wish
  examples: |
    - 我[阿妈](beneficiary)想要[一部](quantity)[轮椅](item)
    - 想申请[米](item)同油
- intent: micro_project
  examples: |
    - 村口[路灯](item)坏咗 老人夜晚唔敢出
"""


def _files(tmp_path: Path, first: str, second: str) -> tuple[Path, Path]:
    a, b = tmp_path / "a.yml", tmp_path / "b.yml"
    a.write_text(first, encoding="utf-8")
    b.write_text(second, encoding="utf-8")
    return a, b


def test_agreement_counts_each_slot(tmp_path: Path) -> None:
    figures = agreement(*_files(tmp_path, FIRST, SECOND))
    item = figures["item"]
    assert (item["both"], item["only_first"], item["only_second"]) == (3, 1, 0)
    assert item["f1"] == round(2 * 3 / (2 * 3 + 1), 3) and item["identical"] == 2
    assert figures["beneficiary"]["f1"] == 1.0 and figures["beneficiary"]["utterances"] == 2
    assert figures["quantity"]["f1"] == 1.0
    # symmetric
    swapped = agreement(*reversed(_files(tmp_path, FIRST, SECOND)))
    assert swapped["item"]["f1"] == item["f1"]


def test_different_texts_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _files(tmp_path, FIRST, SECOND.replace("唔敢出", "唔敢行"))
    with pytest.raises(NotTheSameTexts):
        agreement(a, b)
    assert main([str(a), str(b)]) == 2 and "same texts" in capsys.readouterr().err


def test_a_missing_or_broken_file_is_a_clear_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, _ = _files(tmp_path, FIRST, SECOND)
    broken = tmp_path / "broken.yml"
    broken.write_text("nlu: [\n", encoding="utf-8")
    assert main([str(a), str(tmp_path / "missing.yml")]) == 2
    assert main([str(a), str(broken)]) == 2
    assert capsys.readouterr().err.count("cannot compare") == 2
