"""The statistics workbook (统计表): the dashboard's figures as an .xlsx file, one sheet per section."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from openpyxl import Workbook

from bot.cases.lifecycle import STATE_LABEL
from bot.cases.numbering import CHANNELS, CHINA, KIND_LABEL
from bot.reporting.figures import Dashboard
from bot.reporting.xlsx import table_sheet


def _pct(value: float | None) -> str:
    return f"{value * 100:.1f}%" if value is not None else "—"


def stats_workbook(d: Dashboard) -> bytes:
    """The dashboard's figures as an .xlsx file (one sheet per section)."""
    wb = Workbook()
    day = lambda dt: dt.astimezone(CHINA).strftime("%Y-%m-%d")  # noqa: E731
    p = d.pool
    summary = [
        ("范围", d.scope.town or "全市", d.scope.community or ""),
        ("起始日期", day(d.start)),
        ("截止日期", day(d.end - timedelta(seconds=1))),
        ("诉求总数", d.counts.total),
        ("期间办结", d.counts.completed),
        ("当前超时", d.timeliness.overdue_now),
        ("评价发出", d.satisfaction.sent),
        ("评价回复", d.satisfaction.answered),
        ("回复率", _pct(d.satisfaction.response_rate)),
        ("平均满意度", d.satisfaction.average if d.satisfaction.average is not None else "—"),
        ("低分（≤2）", d.satisfaction.low),
        ("资源邀请", p.offers),
        ("邀请已答复", p.answered),
        ("其中接受", p.accepted),
        ("邀请待答复", p.pending),
        ("资源接受率（接受÷已答复）", _pct(p.accept_rate)),
    ]
    wb.remove(wb.active)  # every sheet is made by table_sheet: a bold, frozen header and fitted columns

    def sheet(title: str, header: list[str], rows: Iterable[Sequence[Any]]) -> None:
        table_sheet(wb, title, header, rows)

    sheet("概况", ["项目", "数值", "备注"], summary)
    c = d.counts
    sheet("按状态", ["状态", "数量"], [(STATE_LABEL.get(k, k), n) for k, n in c.by_status])
    sheet("按类型", ["类型", "数量"], [(KIND_LABEL.get(k, k), n) for k, n in c.by_kind])
    sheet("按类别", ["类别", "数量"], c.by_category)
    sheet("按镇街", ["镇街", "数量"], c.by_town)
    sheet("按渠道", ["渠道", "数量"], [(CHANNELS.get(k, k), n) for k, n in c.by_channel])
    t = d.timeliness
    sheet(
        "按时率",
        ["环节", "完成数", "按时数", "按时率"],
        [(s.label, s.finished, s.on_time, _pct(s.rate)) for s in t.stages],
    )
    sheet(
        "办理时长",
        ["类型", "办结数", "中位数（小时）", "平均（小时）"],
        [(KIND_LABEL.get(k.kind, k.kind), k.completed, k.median_hours, k.mean_hours) for k in t.durations],
    )
    sheet("满意度分布", ["分数", "人数"], sorted(d.satisfaction.distribution.items()))
    sheet("资源排行", ["爱心资源", "办结诉求数"], d.pool.top)
    dm = d.demand
    sheet(
        "需求类别",
        ["类别", "本月", "上月", "变化"],
        [(r.name, r.this_month, r.last_month, r.change) for r in dm.categories],
    )
    sheet(
        "需求物品",
        ["物品/事项", "本月", "上月", "变化"],
        [(r.name, r.this_month, r.last_month, r.change) for r in dm.items],
    )
    sheet("未实现心愿", ["镇街", "未办结微心愿"], dm.unmet)
    sheet("高频词", ["词语", "次数"], dm.words)
    sheet(
        "每周趋势",
        ["周一日期", "新增", "办结"],
        [(w.week_start.isoformat(), w.created, w.completed) for w in dm.weeks],
    )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
