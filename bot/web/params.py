"""One strict parser for every parameter the web edge reads: query strings, form fields and path segments.

Every value is parsed once, here, with bounds: integers are ASCII digits only (``²``, ``٣`` and full-width
digits are refused, not half-accepted by ``str.isdigit`` and then refused by ``int``), ids fit a 63-bit column,
dates lie in a sane range, choices come from a fixed set, text has a maximum length and no control characters.
A bad value raises `ParamError` (a `ValueError`), which the error middleware turns into a 400 page in Chinese;
`parse_page` alone is lenient, because a stale pager link should land on page 1, not on an error."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

__all__ = [
    "MAX_ID",
    "MAX_PAGE",
    "ParamError",
    "clean_query",
    "form_text",
    "optional_int",
    "parse_case_no",
    "parse_choice",
    "parse_date",
    "parse_int",
    "parse_int_id",
    "parse_page",
    "parse_text",
]

MAX_PAGE = 10_000
MAX_ID = 2**63 - 1  # BIGINT; SQLite's INTEGER too
MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2100, 12, 31)
_DIGITS = re.compile(r"[0-9]{1,19}")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_CASE_NO = re.compile(r"[A-Za-z0-9-]{1,24}")


class ParamError(ValueError):
    """A parameter the request should not have sent; ``message`` is shown to the user (Chinese)."""

    def __init__(self, message: str = "请求中的参数不正确，请返回上一页重试。", *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _raw(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_int(value: Any, *, field: str = "", lo: int = 0, hi: int = MAX_ID) -> int:
    """ASCII digits only (surrounding whitespace allowed), within ``lo..hi``."""
    raw = _raw(value).strip()
    if not _DIGITS.fullmatch(raw):
        raise ParamError(f"“{field or '参数'}”应为数字", field=field)
    number = int(raw)
    if not lo <= number <= hi:
        raise ParamError(f"“{field or '参数'}”超出范围（{lo}–{hi}）", field=field)
    return number


def parse_int_id(value: Any, *, field: str = "编号") -> int:
    """A database id (1 .. 2**63-1): an over-long id is refused here, never sent to the database."""
    return parse_int(value, field=field, lo=1, hi=MAX_ID)


def optional_int(value: Any, *, field: str = "", lo: int = 0, hi: int = MAX_ID) -> int | None:
    """None for an absent or empty value, else as `parse_int`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_int(value, field=field, lo=lo, hi=hi)


def parse_page(query: Mapping[str, Any], name: str = "page") -> int:
    """``?page=`` as 1..MAX_PAGE; absent, not a number or out of range → the nearest valid page."""
    raw = _raw(query.get(name, "")).strip()
    if not _DIGITS.fullmatch(raw):
        return 1
    return max(1, min(int(raw), MAX_PAGE))


def parse_case_no(value: Any, *, field: str = "诉求编号") -> str:
    """A case number as it appears in URLs and forms (MS20260302-0001), upper-cased; anything else is refused
    before it reaches the database (a NUL byte would make PostgreSQL fail)."""
    raw = _raw(value).strip()
    if not _CASE_NO.fullmatch(raw):
        raise ParamError(f"“{field}”不正确", field=field)
    return raw.upper()


def parse_date(value: Any, *, field: str = "日期", lo: date = MIN_DATE, hi: date = MAX_DATE) -> date | None:
    """``YYYY-MM-DD`` (ASCII digits) between ``lo`` and ``hi``; None when empty."""
    raw = _raw(value).strip()
    if not raw:
        return None
    m = _DATE.fullmatch(raw)
    if not m:
        raise ParamError(f"“{field}”应为 年-月-日 格式，例如 2026-03-01", field=field)
    try:
        day = date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise ParamError(f"“{field}”不是有效的日期", field=field) from None
    if not lo <= day <= hi:
        raise ParamError(f"“{field}”应在 {lo.isoformat()} 到 {hi.isoformat()} 之间", field=field)
    return day


def parse_choice(value: Any, choices: Collection[str], *, default: str | None = None, field: str = "") -> str:
    """One of ``choices``; an absent/empty value gives ``default`` (refused when there is none)."""
    raw = _raw(value).strip()
    if raw in choices:
        return raw
    if not raw and default is not None:
        return default
    raise ParamError(f"“{field or '选项'}”不是可选的值", field=field)


def _clean(text: str, *, multiline: bool) -> str:
    keep = {"\n", "\t"} if multiline else set()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in keep or unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))


def parse_text(
    value: Any, *, field: str = "", max_len: int, required: bool = False, multiline: bool = False
) -> str:
    """Text without control characters (newlines kept when ``multiline``), stripped, at most ``max_len``
    characters — a longer value is refused, not silently cut, so what is stored is what was typed."""
    text = _clean(_raw(value), multiline=multiline).strip()
    if len(text) > max_len:
        raise ParamError(f"“{field or '内容'}”最多{max_len}个字", field=field)
    if required and not text:
        raise ParamError(f"请填写“{field or '内容'}”", field=field)
    return text


def clean_query(query: Mapping[str, Any], *, max_len: int = 256) -> dict[str, str]:
    """The query string as a plain dict (first value of each name), control characters removed and each value
    cut at ``max_len``: for filters a domain function reads field by field (an odd filter value finds
    nothing; it must never reach the database as a NUL byte)."""
    out: dict[str, str] = {}
    for name in query:
        if name not in out:
            out[name] = _clean(_raw(query.get(name, "")), multiline=False)[:max_len]
    return out


def form_text(
    form: Mapping[str, Any],
    name: str,
    *,
    max_len: int,
    field: str = "",
    required: bool = False,
    multiline: bool = False,
) -> str:
    """`parse_text` of ``form[name]`` (missing → empty)."""
    return parse_text(
        form.get(name, ""), field=field or name, max_len=max_len, required=required, multiline=multiline
    )
