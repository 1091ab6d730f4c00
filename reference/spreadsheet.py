"""Spreadsheet safety rules shared by every export and import: the ONE escaping rule for exported cells.

A cell whose text a spreadsheet program could read as a formula (``= + - @`` first) or that hides its start
(tab, carriage return, line feed or other leading whitespace) is written with a leading single quote, so Excel,
WPS and LibreOffice show it as text and never evaluate it. Numbers, dates, booleans and ``None`` pass unchanged.
Use :func:`safe_cell` (or :func:`safe_row`) for every cell of every CSV or XLSX the project writes; an import
reverses it with :func:`unescape_cell`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: First characters that make a spreadsheet treat a cell as a formula or hide how it starts.
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def needs_quote(text: str) -> bool:
    """True when ``text`` must be written with a leading single quote."""
    return bool(text) and (text.startswith(DANGEROUS_START) or text[0].isspace())


def safe_cell(value: Any) -> Any:
    """The value to write in an exported cell: text that could be a formula gets a leading ``'``."""
    if isinstance(value, str) and needs_quote(value):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    """:func:`safe_cell` applied to each cell of a row."""
    return [safe_cell(v) for v in values]


def unescape_cell(text: str) -> str:
    """Undo :func:`safe_cell` on text read back from a file this project exported."""
    if text.startswith("'") and needs_quote(text[1:]):
        return text[1:]
    return text
