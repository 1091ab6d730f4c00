"""Writing exported .xlsx sheets: the one place a reporting export puts a value into a cell, and the layout every
sheet shares (a bold, frozen header row; columns as wide as their contents, within bounds).

Every cell goes through :func:`reference.spreadsheet.safe_cell` (the project's one escaping rule: text starting
with ``= + - @``, a tab, a carriage return or other whitespace is written as text, never as a formula), after the
characters XML cannot hold (control characters a WeChat message may carry) are dropped — openpyxl refuses them,
and a refused cell would end the whole export.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from reference.spreadsheet import safe_cell


def cell_value(value: Any) -> Any:
    """``value`` as it may be written into a cell: XML-safe, and text that could be a formula escaped."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    return safe_cell(value)


def append_row(ws: Any, values: Iterable[Any]) -> None:
    """Append one row to the worksheet ``ws`` (normal or write-only), every value through :func:`cell_value`."""
    ws.append([cell_value(v) for v in values])


# ------------------------------------------------------------------ layout: a frozen, bold header and readable widths
MIN_WIDTH, MAX_WIDTH = 6, 60


def display_width(value: Any) -> int:
    """How many columns of a spreadsheet ``value`` takes: Chinese and other wide characters count twice."""
    text = "" if value is None else str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _width(chars: int) -> float:
    return float(min(MAX_WIDTH, max(MIN_WIDTH, chars + 2)))


def table_sheet(wb: Any, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Any:
    """A sheet of ``wb`` (a normal workbook) holding ``header`` and ``rows``: the header bold and frozen, every
    column as wide as its widest cell (within ``MIN_WIDTH``..``MAX_WIDTH``)."""
    ws = wb.create_sheet(title)
    append_row(ws, header)
    for row in rows:
        append_row(ws, row)
    format_sheet(ws)
    return ws


def format_sheet(ws: Any) -> None:
    """Freeze and embolden the first row of a normal worksheet and fit its columns to their contents."""
    ws.freeze_panes = "A2"
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for index, column in enumerate(ws.iter_cols(values_only=True), 1):
        ws.column_dimensions[get_column_letter(index)].width = _width(
            max(map(display_width, column), default=0)
        )


def streamed_sheet(wb: Any, title: str, header: Sequence[str], widths: Sequence[int]) -> Any:
    """A sheet of a write-only workbook (rows are streamed, so widths are given, in characters, up front): the
    header bold and frozen."""
    ws = wb.create_sheet(title)
    ws.freeze_panes = "A2"
    for index, chars in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(index)].width = _width(chars)
    cells = []
    for value in header:
        cell = WriteOnlyCell(ws, value=cell_value(value))
        cell.font = Font(bold=True)
        cells.append(cell)
    ws.append(cells)
    return ws
