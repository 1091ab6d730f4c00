"""Import and export of the 爱心资源库 as CSV or Excel (XLSX).

Columns, in export order (the header may use the Chinese or the English name; order does not matter on import):

| 中文 | English | required | content |
|---|---|---|---|
| 编号 | key | yes | stable key; re-importing the same key updates that record |
| 类型 | kind | yes | 爱心企业 / 社会组织 / 热心市民 (or enterprise / organisation / individual) |
| 名称 | name | yes | |
| 联系人 | contact | no | defaults to the name |
| 电话 | phone | yes | mobile 1[3-9]xxxxxxxxx or landline 0769-xxxxxxxx; spaces and dashes are ignored; a masked number (138****5678, from a masked export) is kept as text for the database layer to match |
| 服务类别 | categories | yes | one or more of the categories, separated by 、 , ， ; ； / or spaces |
| 物品服务 | items | no | concrete items or services, same separators; empty = the whole category |
| 所在镇街 | home_town | yes | full or short town name (虎门 → 虎门镇) |
| 服务镇街 | towns_served | no | towns, or 全市; empty = the home town only |
| 同时承接上限 | capacity_open | no | integer ≥ 0, default 1 |
| 每月承接上限 | capacity_month | no | integer ≥ 0, default 4 |
| 可接单 | available | no | 是/否, default 是 |
| 启用 | active | no | 是/否, default 是 |
| 资助上限 | max_fund | no | yuan, integer; empty = no limit stated |
| 进行中 | open_matches | no | history columns below are exported for reference; |
| 本月已承接 | month_matches | no | the database layer decides whether an import |
| 近30天承接 | recent_load | no | may overwrite them (see ``ImportResult.columns``) |
| 邀请次数 | offers | no | |
| 接受次数 | accepts | no | |
| 拒绝次数 | declines | no | |
| 超时次数 | timeouts | no | |
| 完成次数 | completions | no | |
| 评分总和 | rating_sum | no | |
| 评价次数 | rating_count | no | |

``export_csv`` returns text; serve it encoded as ``utf-8-sig`` so Excel opens the Chinese correctly. On import CSV
may be UTF-8 (with or without BOM) or GB18030/GBK, as Chinese Excel saves it. Row numbers in problems are the
spreadsheet's (the header is row 1). The import is all-or-nothing: when ``ImportResult.ok`` is false the caller
must write nothing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from matching.model import CATEGORIES, CITY_WIDE, KIND_LABELS, Resource
from matching.scoring import town_name
from reference import towns
from reference.privacy import parse_phone_field
from reference.spreadsheet import (
    DEFAULT_LIMITS,
    ReadLimits,
    SpreadsheetRefused,
    read_table,
    safe_row,
    unescape_cell,
)

#: (field, Chinese header) in export order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "编号"),
    ("kind", "类型"),
    ("name", "名称"),
    ("contact", "联系人"),
    ("phone", "电话"),
    ("categories", "服务类别"),
    ("items", "物品服务"),
    ("home_town", "所在镇街"),
    ("towns_served", "服务镇街"),
    ("capacity_open", "同时承接上限"),
    ("capacity_month", "每月承接上限"),
    ("available", "可接单"),
    ("active", "启用"),
    ("max_fund", "资助上限"),
    ("open_matches", "进行中"),
    ("month_matches", "本月已承接"),
    ("recent_load", "近30天承接"),
    ("offers", "邀请次数"),
    ("accepts", "接受次数"),
    ("declines", "拒绝次数"),
    ("timeouts", "超时次数"),
    ("completions", "完成次数"),
    ("rating_sum", "评分总和"),
    ("rating_count", "评价次数"),
)
HEADERS: dict[str, str] = dict(COLUMNS)
REQUIRED: tuple[str, ...] = ("key", "kind", "name", "phone", "categories", "home_town")
_INT_FIELDS = (
    "capacity_open",
    "capacity_month",
    "open_matches",
    "month_matches",
    "offers",
    "accepts",
    "declines",
    "timeouts",
    "completions",
    "rating_count",
)
_FLOAT_FIELDS = ("recent_load", "rating_sum")
_BOOL_FIELDS = ("available", "active")
_DEFAULTS = {f.name: f.default for f in fields(Resource)}

_BY_HEADER: dict[str, str] = {}
for _name, _label in COLUMNS:
    _BY_HEADER[_label] = _name
    _BY_HEADER[_name.lower()] = _name
_KIND_BY_LABEL = (
    {label: kind for kind, label in KIND_LABELS.items()}
    | {k: k for k in KIND_LABELS}
    | {
        "企业": "enterprise",
        "社会组织": "organisation",
        "组织": "organisation",
        "个人": "individual",
        "志愿者": "individual",
        "市民": "individual",
    }
)
_TRUE = {"是", "y", "yes", "true", "1", "可", "启用", "可接单", "√"}
_FALSE = {"否", "n", "no", "false", "0", "不", "停用", "暂停", "×"}
_SPLIT = re.compile(r"[、,，;；/|\s]+")
MAX_ROWS = DEFAULT_LIMITS.max_rows
#: a number as a masked export shows it (``reference.privacy.mask_phone``): kept as is, never a new number
MASKED_PHONE = re.compile(r"1\d{2}\*{4}\d{4}|0\d{2,3}-\*{4}\d{4}")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the file: spreadsheet row (0 = the file itself, 1 = header), column, message."""

    row: int
    column: str
    message: str


@dataclass(slots=True)
class ImportResult:
    rows: list[Resource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Fields present in the file (so an update can leave absent ones, e.g. history, untouched).
    columns: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.rows)

    def report(self, limit: int = 50) -> str:
        """The problems as plain Chinese lines for the staff page."""
        if self.ok:
            return f"共{len(self.rows)}条记录，全部通过校验。"
        if not self.problems:
            return "文件中没有记录。"
        lines = [f"发现{len(self.problems)}个问题，整个文件未导入，请修改后重新上传："]
        for p in self.problems[:limit]:
            where = "文件" if p.row == 0 else f"第{p.row}行"
            lines.append(f"{where}{'「' + p.column + '」' if p.column else ''}：{p.message}")
        if len(self.problems) > limit:
            lines.append(f"……另有{len(self.problems) - limit}个问题未列出")
        return "\n".join(lines)


# --- export ----------------------------------------------------------------------------------------------------


def _join(values: Iterable[str]) -> str:
    return "、".join(sorted(values))


def _cell(resource: Resource, name: str) -> Any:
    value = getattr(resource, name)
    if name == "kind":
        return KIND_LABELS.get(value, value)
    if name in ("categories", "items"):
        return _join(value)
    if name == "towns_served":
        return CITY_WIDE if resource.city_wide else _join(value)
    if name in _BOOL_FIELDS:
        return "是" if value else "否"
    if name == "max_fund":
        return "" if value is None else value
    return value


def export_rows(resources: Iterable[Resource]) -> list[list[Any]]:
    """Header row plus one row per resource, as cells."""
    header = [label for _, label in COLUMNS]
    return [header, *(safe_row(_cell(r, name) for name, _ in COLUMNS) for r in resources)]


def export_csv(resources: Iterable[Resource]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in export_rows(resources):
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def export_xlsx(resources: Iterable[Resource]) -> bytes:
    from openpyxl import Workbook  # heavy, and only an Excel export needs it

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("爱心资源库")
    for row in export_rows(resources):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- import ----------------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return unescape_cell(str(value).strip())


def parse_pool(
    data: bytes,
    *,
    filename: str,
    categories: Sequence[str] = CATEGORIES,
    max_rows: int = MAX_ROWS,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> ImportResult:
    """Parse and validate a pool file (``.csv`` or ``.xlsx``, told apart by ``filename``).

    ``categories`` are the categories staff currently allow. Reading is bounded by ``limits`` (rows, columns,
    cells, uncompressed size, time; see ``reference.spreadsheet``): a file over a limit is one problem, never an
    exception. Blocking: async callers run it in a thread. Nothing is written anywhere: check ``result.ok`` and
    write all ``result.rows`` or none.
    """
    result = ImportResult()
    try:
        table = read_table(data, filename=filename, limits=limits)
    except SpreadsheetRefused as exc:
        result.problems.append(Problem(0, "", str(exc)))
        return result
    while table and not any(_text(v) for v in table[0]):
        table.pop(0)  # leading empty lines
    if not table:
        result.problems.append(Problem(0, "", "文件是空的"))
        return result
    header = [_text(v) for v in table[0]]
    positions: dict[str, int] = {}
    for col, raw in enumerate(header):
        if not raw:
            continue
        name = _BY_HEADER.get(raw) or _BY_HEADER.get(raw.lower())
        if name is None:
            result.problems.append(Problem(1, raw, "未知的列名"))
        elif name in positions:
            result.problems.append(Problem(1, raw, "列名重复"))
        else:
            positions[name] = col
    for name in REQUIRED:
        if name not in positions:
            result.problems.append(Problem(1, HEADERS[name], "缺少必填列"))
    if result.problems:
        return result
    result.columns = frozenset(positions)
    body = table[1:]
    if len(body) > max_rows:
        result.problems.append(Problem(0, "", f"行数超过上限{max_rows}，请分批导入"))
        return result
    allowed = set(categories)
    first_row_of: dict[str, int] = {}
    for offset, raw_row in enumerate(body):
        row_no = offset + 2
        cells = {name: _text(raw_row[col]) if col < len(raw_row) else "" for name, col in positions.items()}
        if not any(cells.values()):
            continue
        resource = _parse_row(row_no, cells, allowed, result.problems)
        if resource is None:
            continue
        earlier = first_row_of.get(resource.key)
        if earlier is not None:
            result.problems.append(
                Problem(row_no, HEADERS["key"], f"编号“{resource.key}”重复（与第{earlier}行相同）")
            )
            continue
        first_row_of[resource.key] = row_no
        result.rows.append(resource)
    if not result.rows and not result.problems:
        result.problems.append(Problem(0, "", "文件中没有记录"))
    return result


def _parse_row(
    row_no: int, cells: dict[str, str], allowed: set[str], problems: list[Problem]
) -> Resource | None:
    before = len(problems)

    def bad(name: str, message: str) -> None:
        problems.append(Problem(row_no, HEADERS[name], message))

    values: dict[str, Any] = {}
    for name in REQUIRED:
        if not cells.get(name):
            bad(name, "不能为空")
    key = cells.get("key", "")
    if len(key) > 64:
        bad("key", "编号过长（最多64个字符）")
    values["key"] = key
    kind_raw = cells.get("kind", "")
    if kind_raw:
        kind = _KIND_BY_LABEL.get(kind_raw) or _KIND_BY_LABEL.get(kind_raw.lower())
        if kind is None:
            bad("kind", f"未知类型“{kind_raw}”，应为爱心企业、社会组织或热心市民")
        values["kind"] = kind
    values["name"] = cells.get("name", "")
    values["contact"] = cells.get("contact") or values["name"]
    phone_raw = cells.get("phone", "")
    if phone_raw and MASKED_PHONE.fullmatch(phone_raw):
        values["phone"] = phone_raw  # from a masked export: the database layer keeps the stored number
    elif phone_raw:
        phone = parse_phone_field(phone_raw)
        if phone is None:
            bad("phone", f"电话号码格式不正确：“{phone_raw}”")
        values["phone"] = phone or ""
    cats = [c for c in _SPLIT.split(cells.get("categories", "")) if c]
    unknown = [c for c in cats if c not in allowed]
    if unknown:
        bad("categories", f"未知类别：{'、'.join(unknown)}（可用：{'、'.join(sorted(allowed))}）")
    values["categories"] = frozenset(cats)
    values["items"] = frozenset(i for i in _SPLIT.split(cells.get("items", "")) if i)
    home_raw = cells.get("home_town", "")
    if home_raw:
        if towns.get(home_raw) is None:
            bad("home_town", f"未知镇街：“{home_raw}”")
        values["home_town"] = town_name(home_raw)
    served_raw = [t for t in _SPLIT.split(cells.get("towns_served", "")) if t]
    if CITY_WIDE in served_raw or "全部" in served_raw:
        values["towns_served"] = frozenset()
    elif served_raw:
        unknown_towns = [t for t in served_raw if towns.get(t) is None]
        if unknown_towns:
            bad("towns_served", f"未知镇街：{'、'.join(unknown_towns)}")
        values["towns_served"] = frozenset(town_name(t) for t in served_raw)
    else:
        values["towns_served"] = (
            frozenset({values.get("home_town", "")}) if values.get("home_town") else frozenset()
        )
    for name in _INT_FIELDS:
        raw = cells.get(name, "")
        if not raw:
            values[name] = _DEFAULTS[name]
            continue
        number = _to_number(raw)
        if number is None or not float(number).is_integer() or number < 0:
            bad(name, f"应为不小于0的整数：“{raw}”")
        else:
            values[name] = int(number)
    for name in _FLOAT_FIELDS:
        raw = cells.get(name, "")
        if not raw:
            values[name] = float(_DEFAULTS[name])  # type: ignore[arg-type]
            continue
        number = _to_number(raw)
        if number is None or number < 0:
            bad(name, f"应为不小于0的数字：“{raw}”")
        else:
            values[name] = float(number)
    fund_raw = cells.get("max_fund", "")
    if fund_raw:
        number = _to_number(fund_raw.removesuffix("元"))
        if number is None or not float(number).is_integer() or number < 0:
            bad("max_fund", f"应为不小于0的整数（元）：“{fund_raw}”")
        else:
            values["max_fund"] = int(number)
    for name in _BOOL_FIELDS:
        raw = cells.get(name, "")
        if not raw:
            values[name] = True
        elif raw.lower() in _TRUE:
            values[name] = True
        elif raw.lower() in _FALSE:
            values[name] = False
        else:
            bad(name, f"应填“是”或“否”：“{raw}”")
    if len(problems) > before:
        return None
    count, total = values["rating_count"], values["rating_sum"]
    if not (count == 0 and total == 0 or count > 0 and count <= total <= 5 * count):
        bad("rating_sum", f"评分总和应在评价次数的1至5倍之间（评价{count}次，总和{total:g}）")
        return None
    return Resource(**values)


def _to_number(raw: str) -> float | None:
    try:
        number = float(raw.replace(",", ""))
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None
