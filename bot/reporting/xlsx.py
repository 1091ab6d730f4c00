"""Writing the rows of an exported .xlsx sheet: the one place a reporting export puts a value into a cell.

Every cell goes through :func:`reference.spreadsheet.safe_cell` (the project's one escaping rule: text starting
with ``= + - @``, a tab, a carriage return or other whitespace is written as text, never as a formula), after the
characters XML cannot hold (control characters a WeChat message may carry) are dropped — openpyxl refuses them,
and a refused cell would end the whole export.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from reference.spreadsheet import safe_cell


def cell_value(value: Any) -> Any:
    """``value`` as it may be written into a cell: XML-safe, and text that could be a formula escaped."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    return safe_cell(value)


def append_row(ws: Any, values: Iterable[Any]) -> None:
    """Append one row to the worksheet ``ws`` (normal or write-only), every value through :func:`cell_value`."""
    ws.append([cell_value(v) for v in values])
