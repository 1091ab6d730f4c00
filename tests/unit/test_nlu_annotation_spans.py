"""Every `item` and `beneficiary` span of the slot development sets (and of new training data) starts and ends on a
token boundary of the Rasa tokenizer (jieba with nlu_data/jieba/), as the annotation guide asks: a span that cuts a
token cannot be learnt by the model and cannot be matched by the case reading (nlu_data/README.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from bot.conversation.nlu.beneficiary import _tokens

NLU = Path(__file__).resolve().parents[2] / "nlu_data"
_MARK = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<name>[^)]+)\)|(?P<json>\{[^}]*\}))")
# The training data of round 5 still holds spans that cut a token (31 items, 1 beneficiary: "[灯]坏晒" where jieba
# has 灯坏/晒). Round 6 widened them (commit d666660) but its model was withdrawn (nlu_data/README.md, round 6), so
# they are pinned per file: the count may only go down; new or rewritten examples must lie on token boundaries.
_KNOWN_IN_TRAINING = {
    "contrast.yml": 3,
    "dialogue_acts.yml": 1,
    "more2.yml": 1,
    "nlu.yml": 15,
    "projects.yml": 7,
    "wishes.yml": 5,
}
_DEV_SETS = [
    (NLU / "tests" / "slots_dev.yml", ("item", "beneficiary")),
    (NLU / "tests" / "slots_dev2.yml", ("item", "beneficiary")),
    (
        NLU / "tests" / "dev.yml",
        ("item",),
    ),  # its beneficiaries keep the gold of their round (孙仔 glued to 读)
]


def spans(line: str) -> tuple[str, list[tuple[str, int, int]]]:
    """Plain text and (entity, start, end) of every mark of one annotated example."""
    found: list[tuple[str, int, int]] = []
    plain, last = "", 0
    for m in _MARK.finditer(line):
        plain += line[last : m.start()]
        name = m.group("name") or json.loads(m.group("json"))["entity"]
        found.append((name, len(plain), len(plain) + len(m.group("text"))))
        plain += m.group("text")
        last = m.end()
    return plain + line[last:], found


def misaligned(path: Path, entities: tuple[str, ...], *, kin_without_wo: bool = False) -> list[str]:
    bad = []
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for block in document.get("nlu") or ():
        for raw in str(block.get("examples") or "").splitlines() if "intent" in block else ():
            if not raw.strip().startswith("- "):
                continue
            text, marks = spans(raw.strip()[2:].strip())
            tokens = _tokens(text)
            starts, ends = {s for _, s, _ in tokens}, {e for _, _, e in tokens}
            # the kin word without 我 where jieba has 我妈/我爸 as one token: the annotator's decision of 2026-12-06
            # (the case records 妈), so a dev set's 我[妈] is no misalignment
            if kin_without_wo:  # evaluation sets only: training spans must stay learnable (whole tokens)
                starts |= {s + 1 for w, s, _ in tokens if w in ("我妈", "我爸")}
            bad += [
                f"{name} [{text[s:e]}] in {text}"
                for name, s, e in marks
                if name in entities and (s not in starts or e not in ends)
            ]
    return bad


def test_spans_helper_finds_the_marks() -> None:
    text, marks = spans("想申请[一张](quantity)[护理床](item)俾[阿妈](beneficiary)")
    assert text == "想申请一张护理床俾阿妈"
    assert [(n, text[s:e]) for n, s, e in marks] == [
        ("quantity", "一张"),
        ("item", "护理床"),
        ("beneficiary", "阿妈"),
    ]


@pytest.mark.parametrize(("path", "entities"), _DEV_SETS, ids=lambda v: v.name if isinstance(v, Path) else "")
def test_slot_dev_set_spans_lie_on_token_boundaries(path: Path, entities: tuple[str, ...]) -> None:
    assert misaligned(path, entities, kin_without_wo=True) == []


@pytest.mark.parametrize("path", sorted((NLU / "data").glob("*.yml")), ids=lambda p: p.name)
def test_training_spans_cutting_a_token_do_not_grow(path: Path) -> None:
    assert len(misaligned(path, ("item", "beneficiary"))) <= _KNOWN_IN_TRAINING.get(path.name, 0)


def test_a_span_that_cuts_a_token_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    # jieba keeps 路灯坏 apart (路灯/坏), but 灯坏 is one token in 啲灯坏晒: [灯] cuts it
    bad.write_text(
        'version: "3.1"\nnlu:\n- intent: micro_project\n  examples: |\n    - 楼道啲[灯](item)坏晒\n'
    )
    assert misaligned(bad, ("item",)) == ["item [灯] in 楼道啲灯坏晒"]
    kin = tmp_path / "kin.yml"
    kin.write_text(
        'version: "3.1"\nnlu:\n- intent: micro_wish\n  examples: |\n    - 我[妈](beneficiary)瘫喺床上\n'
    )
    assert misaligned(kin, ("beneficiary",)) == ["beneficiary [妈] in 我妈瘫喺床上"]  # training: cuts 我妈
    assert misaligned(kin, ("beneficiary",), kin_without_wo=True) == []  # an evaluation set's 我[妈]
