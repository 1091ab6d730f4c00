"""Spreadsheet safety rules shared by every export and import: the ONE escaping rule for exported cells.

A cell whose text a spreadsheet program could read as a formula (``= + - @`` first) or that hides its start
(tab, carriage return, line feed or other leading whitespace) is written with a leading single quote, so Excel,
WPS and LibreOffice show it as text and never evaluate it. Numbers, dates, booleans and ``None`` pass unchanged.
Use :func:`safe_cell` (or :func:`safe_row`) for every cell of every CSV or XLSX the project writes; an import
reverses it with :func:`unescape_cell`.
"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
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


# --- bounded reading -------------------------------------------------------------------------------------------


class SpreadsheetRefused(ValueError):
    """The file is refused before or while reading it; the message is plain Chinese for the staff page."""


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What an uploaded table may cost. A file over any limit is refused whole, never partly read."""

    max_rows: int = 10_000
    max_columns: int = 64
    max_cells: int = 400_000
    max_cell_chars: int = 2_000
    #: XLSX: total uncompressed size of the zip members (declared and actually read), and of one member
    max_uncompressed: int = 40 * 1024 * 1024
    max_members: int = 200
    #: XLSX: a member that expands more than this many times is a zip bomb, not a spreadsheet
    max_ratio: int = 150
    #: wall-clock seconds of reading and checking, measured inside the reading thread
    seconds: float = 20.0


DEFAULT_LIMITS = ReadLimits()


class Clock:
    """A deadline checked while reading (a thread cannot be killed, so the reader stops itself)."""

    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.until:
            raise SpreadsheetRefused("文件太大，处理超时，请分批导入")


def read_table(data: bytes, *, filename: str, limits: ReadLimits = DEFAULT_LIMITS) -> list[list[Any]]:
    """The first sheet of a ``.csv``/``.txt`` or ``.xlsx``/``.xlsm`` file as rows of cell values, within ``limits``.

    Raises :class:`SpreadsheetRefused` with a message staff can act on when the file is of another type, cannot
    be read, or exceeds a limit (rows, columns, cells, cell length, uncompressed size, time). XLSX cells right of
    column ``max_columns + 1`` are never read (a row reaching that column is refused). Blocking: call it through
    ``asyncio.to_thread`` from async code."""
    clock = Clock(limits.seconds)
    lower = filename.lower()
    if lower.endswith((".csv", ".txt")):
        return _read_csv(data, limits, clock)
    if lower.endswith((".xlsx", ".xlsm")):
        return _read_xlsx(data, limits, clock)
    raise SpreadsheetRefused("只支持CSV或Excel（.xlsx）文件")


class _Table:
    """Rows collected within the limits. Empty rows are only counted until a row with content follows, so a
    formatted but empty row far down the sheet (row 1048576) neither costs memory nor counts as data."""

    def __init__(self, limits: ReadLimits) -> None:
        self.limits = limits
        self.rows: list[list[Any]] = []
        self.empty = 0
        self.cells = 0

    def add(self, row: list[Any]) -> None:
        limits = self.limits
        while row and (row[-1] is None or row[-1] == ""):
            row.pop()
        if not row:
            self.empty += 1
            return
        number = len(self.rows) + self.empty + 1
        if number > limits.max_rows + 1:  # + the header
            raise SpreadsheetRefused(f"行数超过上限{limits.max_rows}，请分批导入")
        if len(row) > limits.max_columns:
            raise SpreadsheetRefused(f"第{number}行的列数超过上限{limits.max_columns}，请删除多余的列")
        for value in row:
            if isinstance(value, str) and len(value) > limits.max_cell_chars:
                raise SpreadsheetRefused(f"第{number}行有单元格超过{limits.max_cell_chars}个字，请检查文件")
        self.cells += len(row)
        if self.cells > limits.max_cells:
            raise SpreadsheetRefused(f"单元格总数超过上限{limits.max_cells}，请分批导入")
        self.rows.extend([] for _ in range(self.empty))
        self.empty = 0
        self.rows.append(row)


def _read_csv(data: bytes, limits: ReadLimits, clock: Clock) -> list[list[Any]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise SpreadsheetRefused("无法识别文件编码，请另存为UTF-8编码的CSV")
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    table = _Table(limits)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            clock.check()
            table.add(row)
    except csv.Error:  # a field over the csv module's limit (128 KB), a NUL byte, a broken quote
        raise SpreadsheetRefused(
            f"第{reader.line_num}行无法读取（单元格过长或格式损坏），请用Excel另存为CSV后重试"
        ) from None
    return table.rows


def _check_zip(data: bytes, limits: ReadLimits, clock: Clock) -> None:
    """Refuse zip bombs before any XML parser sees the file: member count, declared sizes and ratios, then the
    sizes actually decompressed (a member may lie about its size)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        raise SpreadsheetRefused("文件无法读取，请确认是Excel（.xlsx）文件") from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_members:
            raise SpreadsheetRefused("文件结构异常（压缩包内文件过多），已拒绝")
        declared = 0
        for info in members:
            declared += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if declared > limits.max_uncompressed or (
                info.file_size > 1024 * 1024 and ratio > limits.max_ratio
            ):
                raise SpreadsheetRefused("文件解压后过大（超过上限或疑似压缩炸弹），已拒绝；请分批导入")
        actual = 0
        try:
            for info in members:
                with archive.open(info) as member:
                    while chunk := member.read(1024 * 1024):
                        actual += len(chunk)
                        clock.check()
                        if actual > limits.max_uncompressed:
                            raise SpreadsheetRefused(
                                "文件解压后过大（超过上限或疑似压缩炸弹），已拒绝；请分批导入"
                            )
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            if isinstance(exc, SpreadsheetRefused):
                raise
            raise SpreadsheetRefused("文件已损坏，无法读取，请重新保存后上传") from None


def _read_xlsx(data: bytes, limits: ReadLimits, clock: Clock) -> list[list[Any]]:
    _check_zip(data, limits, clock)
    # openpyxl is heavy and only needed here
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except SpreadsheetRefused:
        raise
    except Exception:  # openpyxl raises many kinds (KeyError, TypeError, lxml errors) on a damaged file
        raise SpreadsheetRefused("文件无法读取，请确认是Excel（.xlsx）文件") from None
    try:
        ws = wb.active if wb.active is not None else wb.worksheets[0]
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()  # never trust the sheet's own <dimension>: it may claim A1:XFD1048576
        table = _Table(limits)
        # one column more than allowed, so a wider row is seen (and refused) without building it whole; no
        # max_row: openpyxl fills a gap of missing rows with one shared empty tuple, counted here cheaply
        filler: object = None
        for values in ws.iter_rows(max_col=limits.max_columns + 1, values_only=True):
            if values is filler:
                table.empty += 1
                continue
            clock.check()
            if not any(v is not None and v != "" for v in values):
                filler = values  # the next rows of a gap are this very tuple
                table.empty += 1
                continue
            table.add(list(values))
        return table.rows
    except SpreadsheetRefused:
        raise
    except Exception:
        raise SpreadsheetRefused("文件内容无法读取，请用Excel重新保存后上传") from None
    finally:
        wb.close()
