"""Inter-annotator agreement: how far two annotations of the same texts agree, slot by slot.

``python -m bot nlu agree A.yml B.yml`` loads two Rasa NLU files whose texts and intents are the same, line for
line (two annotators marked the same sentences without seeing each other's marks), and prints, per entity, the F1
of one against the other over the values each marks per utterance (symmetric: the F1 of A against B is that of B
against A) and how many utterances they mark identically. Beneficiaries count in wishes only, as the evaluation
scores them. Only aggregate figures are printed, so a held-out set stays blind. A model cannot be expected to
agree with an annotator more than a second annotator does: this is the ceiling for the figures of ``nlu eval``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from bot.conversation.nlu.evaluate import Counts, load_examples

ENTITIES = ("item", "beneficiary", "quantity", "town")


class NotTheSameTexts(ValueError):
    """The two files do not hold the same texts and intents in the same order."""


def agreement(first: Path, second: Path) -> dict[str, Any]:
    a, b = load_examples(first), load_examples(second)
    if len(a) != len(b) or any(x.text != y.text or x.intent != y.intent for x, y in zip(a, b, strict=False)):
        raise NotTheSameTexts(
            f"{first.name} and {second.name} do not hold the same texts and intents in order"
        )
    figures: dict[str, Any] = {"utterances": len(a)}
    for name in ENTITIES:
        counts, identical, scored = Counts(), 0, 0
        for x, y in zip(a, b, strict=True):
            if name == "beneficiary" and x.intent != "micro_wish":
                continue
            mine = {v for e, v in x.entities if e == name}
            theirs = {v for e, v in y.entities if e == name}
            counts.tp += len(mine & theirs)
            counts.fp += len(theirs - mine)
            counts.fn += len(mine - theirs)
            identical += mine == theirs
            scored += 1
        figures[name] = {
            "f1": round(counts.f1, 3),
            "both": counts.tp,
            "only_second": counts.fp,
            "only_first": counts.fn,
            "identical": identical,
            "utterances": scored,
        }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot nlu agree", description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args(argv)
    try:
        figures = agreement(args.first, args.second)
    except (
        NotTheSameTexts,
        OSError,
        ValueError,
        yaml.YAMLError,
    ) as exc:  # a file missing, unreadable or not NLU data
        print(f"cannot compare: {exc}", file=sys.stderr)
        return 2
    for name in ENTITIES:
        f = figures[name]
        print(
            f"{name:12} agreement F1 {f['f1']:.3f} (both {f['both']}, only in the second {f['only_second']}, "
            f"only in the first {f['only_first']}); identical in {f['identical']} of {f['utterances']}"
        )
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
