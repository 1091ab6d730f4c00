"""The summary a resident confirms names the person helped as the case's title will ("给父亲"), not as typed."""

from __future__ import annotations

import pytest

from bot.cases.titles import case_title
from bot.conversation.dialogue.drafts import summary


def _draft(beneficiary: str | None) -> dict[str, object]:
    return {
        "kind": "micro_wish",
        "item": "护理床",
        "description": "我爸瘫痪在床，想要一张护理床",
        "beneficiary": beneficiary,
        "town": "石龙镇",
        "phone": "13826951234",
    }


@pytest.mark.parametrize(
    ("typed", "shown"),
    [("爸", "父亲"), ("我妈", "母亲"), ("老人家", "老人"), ("隔壁陈伯", "隔壁陈伯"), (" 阿嫲 ", "奶奶")],
)
def test_the_summary_and_the_title_name_the_same_person(typed: str, shown: str) -> None:
    text = summary(_draft(typed))
    assert f"为谁：{shown}\n" in text
    assert case_title(item="护理床", beneficiary=typed).endswith(f"给{shown}")
    assert "13826951234" not in text and "138****1234" in text


@pytest.mark.parametrize("typed", [None, "", "  "])
def test_no_line_for_nobody(typed: str | None) -> None:
    assert "为谁" not in summary(_draft(typed))
