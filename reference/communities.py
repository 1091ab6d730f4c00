"""The villages and communities (村/社区) of each town: the seed list shipped with the project
(``reference/data/communities.csv``, see ``reference/data/README.md`` for what it holds and what it does not), the
strict parser of community CSV files, and the name rules used to map free-text community values to the registry.

Pure functions: no database, nothing from ``bot/``. The registry itself is the ``community`` table."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from reference.towns import TOWNS

SEED_CSV = Path(__file__).parent / "data" / "communities.csv"
KINDS = ("社区", "村")
MAX_NAME = 32
MAX_ROWS = 5000
MAX_BYTES = 512 * 1024
#: header aliases: the English column names of the seed file, or the Chinese ones staff type in a spreadsheet
HEADERS = {
    "town": "town",
    "镇街": "town",
    "name": "name",
    "名称": "name",
    "村（社区）": "name",
    "村(社区)": "name",
    "kind": "kind",
    "类型": "kind",
}
_TOWN_OF = {t.name: t.name for t in TOWNS} | {t.short: t.name for t in TOWNS}
_NAME_RE = re.compile(r"^[\u4e00-\u9fff0-9A-Za-z（）()·]+$")
_SUFFIXES = ("村民委员会", "居民委员会", "社区居委会", "村委会", "居委会", "社区", "村")
_SPACES = re.compile(r"[\s\u3000]+")


@dataclass(frozen=True, slots=True)
class CommunityRow:
    town: str
    name: str
    kind: str
    line: int = 0


@dataclass(slots=True)
class ParsedFile:
    rows: list[CommunityRow] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason in Chinese)
    fatal: str | None = None  # the whole file is unusable (encoding, header, size)


def town_of(value: str) -> str | None:
    """The full town name for a full or short name ("厚街" → "厚街镇"), else None."""
    return _TOWN_OF.get(_SPACES.sub("", unicodedata.normalize("NFKC", value or "")))


def clean_name(value: str) -> str:
    """The name as stored: NFKC-normalised (full-width letters and digits become ASCII), no whitespace."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", value or ""))


def stem(value: str) -> str:
    """The distinctive part of a community name, for matching free text: "新围社区", "新围村委会", " 新围 "
    all give "新围". Only one administrative suffix is removed."""
    name = clean_name(value)
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def check_row(town: str, name: str, kind: str) -> tuple[CommunityRow | None, str | None]:
    """One row checked: (the row, None) or (None, the reason it is refused)."""
    full_town = town_of(town)
    if full_town is None:
        return None, f"镇街“{town[:20]}”不是东莞的33个镇街之一"
    name = clean_name(name)
    kind = clean_name(kind)
    if not name:
        return None, "名称为空"
    if len(name) > MAX_NAME:
        return None, f"名称超过{MAX_NAME}个字"
    if not _NAME_RE.match(name):
        return None, "名称只能包含汉字、字母和数字"
    if kind not in KINDS:
        return None, "类型只能是“社区”或“村”"
    if not name.endswith(kind):
        return None, f"名称应以“{kind}”结尾（类型是{kind}）"
    if len(name) <= len(kind):
        return None, "名称只有类型，没有村（社区）名"
    return CommunityRow(full_town, name, kind), None


def parse_csv(data: bytes) -> ParsedFile:
    """A community CSV (UTF-8, with or without BOM; columns town,name,kind or 镇街,名称,类型), strictly: every
    refused row is reported with its line number and reason, a name repeated in the same town is refused."""
    out = ParsedFile()
    if len(data) > MAX_BYTES:
        out.fatal = f"文件超过{MAX_BYTES // 1024} KB"
        return out
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        out.fatal = "文件不是UTF-8编码（请在表格软件中另存为“CSV UTF-8”）"
        return out
    if "\x00" in text:
        out.fatal = "文件含有二进制内容，不是CSV"
        return out
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        out.fatal = "文件为空"
        return out
    columns = [HEADERS.get(clean_name(h)) for h in header]
    if sorted(c for c in columns if c) != ["kind", "name", "town"] or len(columns) != 3:
        out.fatal = "第1行应是表头：town,name,kind（或 镇街,名称,类型）"
        return out
    seen: set[tuple[str, str]] = set()
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(out.rows) + len(out.rejected) >= MAX_ROWS:
                out.fatal = f"超过{MAX_ROWS}行"
                return out
            if len(record) != 3:
                out.rejected.append((line, f"应有3列，实际{len(record)}列"))
                continue
            values = dict(zip(columns, record, strict=True))
            row, problem = check_row(values["town"] or "", values["name"] or "", values["kind"] or "")
            if row is None:
                out.rejected.append((line, problem or "格式不正确"))
                continue
            if (row.town, row.name) in seen:
                out.rejected.append((line, f"{row.town}{row.name}在文件中重复"))
                continue
            seen.add((row.town, row.name))
            out.rows.append(CommunityRow(row.town, row.name, row.kind, line))
    except csv.Error as exc:
        out.fatal = f"第{reader.line_num}行CSV格式错误：{exc}"
    return out


def seed_rows() -> list[CommunityRow]:
    """The shipped seed list (every row must parse: tests/unit/test_community_rules.py)."""
    parsed = parse_csv(SEED_CSV.read_bytes())
    if parsed.fatal or parsed.rejected:
        raise ValueError(f"{SEED_CSV}: {parsed.fatal or parsed.rejected}")
    return parsed.rows


def match(town: str, text: str, registry: dict[str, list[tuple[int, str]]]) -> int | None:
    """The registry id for a free-text community value in ``town``: the exact name, else the only community of
    that town with the same stem ("新围" and "新围村委会" → 新围社区). None when nothing or more than one fits."""
    candidates = registry.get(town_of(town) or town, [])
    name = clean_name(text)
    if not name:
        return None
    exact = [cid for cid, n in candidates if n == name]
    if len(exact) == 1:
        return exact[0]
    wanted = stem(name)
    by_stem = [cid for cid, n in candidates if stem(n) == wanted]
    return by_stem[0] if len(by_stem) == 1 else None
