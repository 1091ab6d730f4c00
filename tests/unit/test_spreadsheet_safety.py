"""The one escaping rule for exported spreadsheet cells (reference/spreadsheet.py)."""

from __future__ import annotations

import pytest

from reference.spreadsheet import safe_cell, safe_row, unescape_cell


@pytest.mark.parametrize(
    "raw",
    [
        '=HYPERLINK("http://evil.example","点我")',
        "+1+1",
        "-2+3",
        "@SUM(A1:A2)",
        "\t=1+1",
        "\r=1+1",
        "\n=1+1",
        " =1+1",
        "\u3000=1+1",  # ideographic space
    ],
)
def test_formula_like_text_is_quoted_and_round_trips(raw: str) -> None:
    cell = safe_cell(raw)
    assert cell == "'" + raw
    assert unescape_cell(cell) == raw


@pytest.mark.parametrize("value", ["轮椅", "0769-22223333", "13800001111", "", 5, -3, 2.5, None, True])
def test_plain_values_pass_unchanged(value: object) -> None:
    assert safe_cell(value) == value
    assert safe_row([value, "=x"]) == [value, "'=x"]


def test_unescape_leaves_an_ordinary_apostrophe() -> None:
    assert unescape_cell("'abc") == "'abc"
