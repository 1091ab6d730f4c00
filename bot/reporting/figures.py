"""数据统计, 需求分析, 项目公示, 信息发布 and 档案留存: read-only figures over the cases, plus the notices.

Every figure is a SQL aggregate (GROUP BY / COUNT / SUM) with the jurisdiction in the WHERE clause: the views
derive ``town`` (and ``community`` for community workers) from the signed-in staff member with ``scope_for`` and
pass them to every function here; ``town=None`` means city-wide. No function loads all rows: medians use an
ORDER BY … OFFSET on the sorted durations, the word count reads a capped sample of descriptions, the archive
export walks the cases in batches.

Date ranges are half-open ``[start, end)`` over aware UTC datetimes; the views turn China-time dates into them.

On-time rates per stage read the ``late`` flag of the transition events (``CaseEvent.data["late"]``): the lifecycle
records, when a case leaves a stage that had a deadline, whether it left after ``stage_deadline``.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, case, cast, func, literal_column, or_
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import CITY_ROLES, OPEN_STATES, STATE_LABEL, SUPERVISORS
from bot.cases.numbering import CHANNELS, CHINA, KIND_LABEL
from bot.deadlines.sla import COMPLETION_STATUSES, STAGE_LABEL, STAGE_OF_STATUS
from bot.models import Case, CaseEvent, Notice, Offer, Resident, Resource, Staff, Survey
from reference.privacy import mask_phone, mask_text
from reference.towns import TOWNS

log = logging.getLogger(__name__)

TOWN_NAMES = tuple(t.name for t in TOWNS)
DONE_STATES = ("completed", "closed")
ACCEPTED_OFFERS = ("accepted", "delivered", "done")
ANSWERED_OFFERS = (*ACCEPTED_OFFERS, "declined", "timeout")
LOW_SCORE = 2
ARCHIVE_MAX = 20_000


# ------------------------------------------------------------------ scope (jurisdiction)
@dataclass(frozen=True, slots=True)
class Scope:
    town: str | None  # None = city-wide
    community: str | None = None


def scope_for(
    *, role: str, own_town: str | None, own_community: str | None, requested_town: str | None
) -> Scope:
    """What a staff member may see: city roles any town (or all), everyone else only their own town (community
    workers only their community), whatever the URL asks for."""
    if role in CITY_ROLES:
        return Scope(requested_town if requested_town in TOWN_NAMES else None)
    town = own_town or "\x00"  # a town-level account without a town sees nothing rather than everything
    if role == "community_worker":
        return Scope(town, own_community or "\x00")
    return Scope(town)


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def _where(
    *,
    town: str | None,
    community: str | None,
    start: datetime | None,
    end: datetime | None,
    column: Any = None,
) -> list[Any]:
    column = col(Case.created_at) if column is None else column
    conds: list[Any] = []
    if town is not None:
        conds.append(col(Case.town) == town)
    if community is not None:
        conds.append(col(Case.community) == community)
    if start is not None:
        conds.append(column >= start)
    if end is not None:
        conds.append(column < end)
    return conds


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# ------------------------------------------------------------------ counts
@dataclass(slots=True)
class Counts:
    total: int = 0
    completed: int = 0  # completed (or completed and archived) within the range, by completion time
    by_status: list[tuple[str, int]] = field(default_factory=list)
    by_kind: list[tuple[str, int]] = field(default_factory=list)
    by_category: list[tuple[str, int]] = field(default_factory=list)
    by_town: list[tuple[str, int]] = field(default_factory=list)
    by_channel: list[tuple[str, int]] = field(default_factory=list)


async def _grouped(
    session: AsyncSession, column: Any, conds: Sequence[Any], *, null: str = "未分类"
) -> list[tuple[str, int]]:
    n = func.count()
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(column, n).where(*conds).group_by(column).order_by(n.desc(), column)
    )
    return [(key if key is not None else null, int(count)) for key, count in rows]


async def counts(
    session: AsyncSession, *, town: str | None, start: datetime, end: datetime, community: str | None = None
) -> Counts:
    """Cases created in [start, end) counted by status, kind, category, town and channel."""
    conds = _where(town=town, community=community, start=start, end=end)
    out = Counts()
    out.by_status = await _grouped(session, col(Case.status), conds)
    out.total = sum(n for _, n in out.by_status)
    out.by_kind = await _grouped(session, col(Case.kind), conds)
    out.by_category = await _grouped(session, col(Case.category), conds)
    out.by_town = await _grouped(session, col(Case.town), conds)
    out.by_channel = await _grouped(session, col(Case.channel), conds)
    done = _where(town=town, community=community, start=start, end=end, column=col(Case.completed_at))
    out.completed = int(
        (await session.exec(select(func.count()).select_from(Case).where(*done))).one()  # type: ignore[arg-type]
    )
    return out


# ------------------------------------------------------------------ timeliness
@dataclass(slots=True)
class StageRate:
    stage: str
    label: str
    finished: int  # stage exits with a known deadline in the range
    on_time: int

    @property
    def rate(self) -> float | None:
        return _rate(self.on_time, self.finished)


@dataclass(slots=True)
class KindDuration:
    kind: str
    completed: int
    median_hours: float | None
    mean_hours: float | None


@dataclass(slots=True)
class Timeliness:
    stages: list[StageRate] = field(default_factory=list)
    overdue_now: int = 0
    overdue_by_status: list[tuple[str, int]] = field(default_factory=list)
    durations: list[KindDuration] = field(default_factory=list)


_STAGE_ORDER = ("submitted", "verified", "accepted", "claimed", "completion", "reopened")


async def stage_on_time(
    session: AsyncSession, *, town: str | None, start: datetime, end: datetime, community: str | None = None
) -> list[StageRate]:
    """Per stage: how many stage exits in [start, end) happened before the stage's deadline. A stage ends when
    the case leaves it; moves between matching / dispatched / in_progress continue the completion stage."""
    late = CaseEvent.data["late"].as_boolean()  # type: ignore[index]
    conds = [
        col(CaseEvent.kind) == "transition",
        col(CaseEvent.from_status).is_not(None),
        col(CaseEvent.at) >= start,
        col(CaseEvent.at) < end,
        late.is_not(None),
        *_where(town=town, community=community, start=None, end=None),
    ]
    q = (
        sa_select(
            col(CaseEvent.from_status),
            col(CaseEvent.to_status),
            func.count(),
            func.sum(case((late, 0), else_=1)),
        )
        .join(Case, col(Case.id) == col(CaseEvent.case_id))
        .where(*conds)
        .group_by(col(CaseEvent.from_status), col(CaseEvent.to_status))
    )
    finished: Counter[str] = Counter()
    on_time: Counter[str] = Counter()
    for from_status, to_status, n, ok in await session.exec(q):  # type: ignore[call-overload]
        stage = STAGE_OF_STATUS.get(from_status)
        if stage is None:
            continue
        if from_status in COMPLETION_STATUSES and to_status in COMPLETION_STATUSES:
            continue  # the completion clock keeps running
        finished[stage] += int(n)
        on_time[stage] += int(ok or 0)
    return [
        StageRate(stage, STAGE_LABEL.get(stage, stage), finished[stage], on_time[stage])
        for stage in _STAGE_ORDER
        if finished[stage]
    ]


def _seconds(session: AsyncSession, later: Any, earlier: Any) -> Any:
    if _dialect(session) == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


async def handling_times(
    session: AsyncSession, *, town: str | None, start: datetime, end: datetime, community: str | None = None
) -> list[KindDuration]:
    """Per kind: median and mean hours from creation to completion, over cases completed in [start, end)."""
    conds = [
        *_where(town=town, community=community, start=start, end=end, column=col(Case.completed_at)),
        col(Case.completed_at).is_not(None),
    ]
    secs = _seconds(session, col(Case.completed_at), col(Case.created_at))
    out: list[KindDuration] = []
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(col(Case.kind), func.count(), func.avg(secs)).where(*conds).group_by(col(Case.kind))
    )
    for kind, n, mean in list(rows):
        n = int(n)
        middle = list(
            await session.exec(  # type: ignore[call-overload]
                sa_select(secs)
                .where(*conds, col(Case.kind) == kind)
                .order_by(secs)
                .offset((n - 1) // 2)
                .limit(1 if n % 2 else 2)
            )
        )
        values = [float(v) for (v,) in middle]
        median = sum(values) / len(values) if values else None
        out.append(
            KindDuration(
                kind,
                n,
                round(median / 3600, 2) if median is not None else None,
                round(float(mean) / 3600, 2) if mean is not None else None,
            )
        )
    out.sort(key=lambda d: d.kind, reverse=True)  # micro_wish first
    return out


async def overdue_now(
    session: AsyncSession, *, town: str | None, now: datetime, community: str | None = None
) -> list[tuple[str, int]]:
    """Open cases whose current stage deadline has passed, by status."""
    conds = [
        *_where(town=town, community=community, start=None, end=None),
        col(Case.status).in_(sorted(OPEN_STATES)),
        col(Case.stage_deadline) < now,
    ]
    return await _grouped(session, col(Case.status), conds)


async def timeliness(
    session: AsyncSession,
    *,
    town: str | None,
    start: datetime,
    end: datetime,
    now: datetime,
    community: str | None = None,
) -> Timeliness:
    overdue = await overdue_now(session, town=town, now=now, community=community)
    return Timeliness(
        stages=await stage_on_time(session, town=town, start=start, end=end, community=community),
        overdue_now=sum(n for _, n in overdue),
        overdue_by_status=overdue,
        durations=await handling_times(session, town=town, start=start, end=end, community=community),
    )


# ------------------------------------------------------------------ satisfaction
@dataclass(slots=True)
class Satisfaction:
    sent: int = 0
    answered: int = 0
    expired: int = 0
    average: float | None = None
    distribution: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(1, 6), 0))
    low: int = 0  # answers with score ≤ LOW_SCORE

    @property
    def response_rate(self) -> float | None:
        return _rate(self.answered, self.sent)


async def satisfaction(
    session: AsyncSession, *, town: str | None, start: datetime, end: datetime, community: str | None = None
) -> Satisfaction:
    """Surveys sent in [start, end): response rate, average score, the 1–5 distribution, low scores."""
    conds = [
        *_where(town=town, community=community, start=start, end=end, column=col(Survey.sent_at)),
    ]
    base = sa_select(col(Survey.status), col(Survey.score), func.count()).join(
        Case, col(Case.id) == col(Survey.case_id)
    )
    out = Satisfaction()
    total_score = 0
    rows = await session.exec(  # type: ignore[call-overload]
        base.where(*conds).group_by(col(Survey.status), col(Survey.score))
    )
    for status, score, n in rows:
        n = int(n)
        out.sent += n
        if status == "expired":
            out.expired += n
        if status == "answered" and score is not None:
            out.answered += n
            out.distribution[int(score)] = out.distribution.get(int(score), 0) + n
            total_score += int(score) * n
            if score <= LOW_SCORE:
                out.low += n
    out.average = round(total_score / out.answered, 2) if out.answered else None
    return out


# ------------------------------------------------------------------ the resource pool
@dataclass(slots=True)
class PoolUsage:
    offers: int = 0
    by_status: list[tuple[str, int]] = field(default_factory=list)
    accepted: int = 0
    answered: int = 0
    top: list[tuple[str, int]] = field(default_factory=list)  # resource name, completed cases

    @property
    def accept_rate(self) -> float | None:
        return _rate(self.accepted, self.answered)


async def pool_usage(
    session: AsyncSession,
    *,
    town: str | None,
    start: datetime,
    end: datetime,
    community: str | None = None,
    top: int = 10,
) -> PoolUsage:
    """Offers made in [start, end) for cases in scope, the accept rate (accepted of answered offers), and the
    resources with most cases completed in the range."""
    conds = _where(town=town, community=community, start=start, end=end, column=col(Offer.offered_at))
    out = PoolUsage()
    n = func.count()
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(col(Offer.status), n)
        .join(Case, col(Case.id) == col(Offer.case_id))
        .where(*conds)
        .group_by(col(Offer.status))
        .order_by(n.desc())
    )
    out.by_status = [(s, int(c)) for s, c in rows]
    out.offers = sum(c for _, c in out.by_status)
    out.accepted = sum(c for s, c in out.by_status if s in ACCEPTED_OFFERS)
    out.answered = sum(c for s, c in out.by_status if s in ANSWERED_OFFERS)
    done = [
        *_where(town=town, community=community, start=start, end=end, column=col(Case.completed_at)),
        col(Offer.status).in_(ACCEPTED_OFFERS),
    ]
    cases_done = func.count(func.distinct(col(Offer.case_id)))
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(col(Resource.name), cases_done)
        .select_from(Offer)
        .join(Case, col(Case.id) == col(Offer.case_id))
        .join(Resource, col(Resource.id) == col(Offer.resource_id))
        .where(*done)
        .group_by(col(Resource.id), col(Resource.name))
        .order_by(cases_done.desc(), col(Resource.name))
        .limit(top)
    )
    out.top = [(name, int(c)) for name, c in rows]
    return out


# ------------------------------------------------------------------ 需求分析 (demand analysis)
@dataclass(slots=True)
class DemandRow:
    name: str
    this_month: int
    last_month: int

    @property
    def change(self) -> int:
        return self.this_month - self.last_month


@dataclass(slots=True)
class WeekRow:
    week_start: date
    created: int
    completed: int


def month_start(moment: datetime, *, months_back: int = 0) -> datetime:
    """The first instant (UTC) of the China-time month of `moment`, `months_back` months earlier."""
    local = moment.astimezone(CHINA)
    year, month = local.year, local.month - months_back
    while month < 1:
        month += 12
        year -= 1
    return datetime(year, month, 1, tzinfo=CHINA)


async def demand_top(
    session: AsyncSession,
    *,
    town: str | None,
    now: datetime,
    by: str = "category",
    kind: str | None = None,
    community: str | None = None,
    limit: int = 10,
) -> list[DemandRow]:
    """The most requested categories (``by="category"``) or items (``by="item"``) this month, with last month's
    count beside them (China-time calendar months; this month runs to `now`)."""
    column = {"category": col(Case.category), "item": col(Case.item)}[by]
    m0, m1 = month_start(now), month_start(now, months_back=1)
    this = func.sum(case((col(Case.created_at) >= m0, 1), else_=0))
    last = func.sum(case((col(Case.created_at) < m0, 1), else_=0))
    conds = [*_where(town=town, community=community, start=m1, end=now), column.is_not(None)]
    if kind:
        conds.append(col(Case.kind) == kind)
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(column, this, last)
        .where(*conds)
        .group_by(column)
        .order_by(this.desc(), last.desc(), column)
        .limit(limit)
    )
    return [DemandRow(name, int(t or 0), int(lm or 0)) for name, t, lm in rows]


async def top_category_by_town(
    session: AsyncSession, *, town: str | None, now: datetime, community: str | None = None
) -> list[tuple[str, str, int, int]]:
    """Per town, this month: (town, its most requested category, that category's count, the town's total)."""
    m0 = month_start(now)
    conds = [*_where(town=town, community=community, start=m0, end=now)]
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(col(Case.town), col(Case.category), func.count())
        .where(*conds)
        .group_by(col(Case.town), col(Case.category))
    )
    best: dict[str, tuple[str, int]] = {}
    totals: Counter[str] = Counter()
    for t, category, n in rows:
        n = int(n)
        totals[t] += n
        name = category or "未分类"
        if t not in best or n > best[t][1] or (n == best[t][1] and name < best[t][0]):
            best[t] = (name, n)
    return sorted(((t, c, n, totals[t]) for t, (c, n) in best.items()), key=lambda r: (-r[3], r[0]))


async def unmet_wishes_by_town(
    session: AsyncSession, *, town: str | None, community: str | None = None, limit: int = 10
) -> list[tuple[str, int]]:
    """The towns with the most micro-wishes still open (not completed, closed, cancelled, rejected or merged)."""
    conds = [
        *_where(town=town, community=community, start=None, end=None),
        col(Case.kind) == "micro_wish",
        col(Case.status).in_(sorted(OPEN_STATES)),
    ]
    return (await _grouped(session, col(Case.town), conds))[:limit]


def _epoch_days(session: AsyncSession, column: Any, origin: datetime) -> Any:
    """Whole days between `origin` and the column, as a SQL expression (floor for non-negative values)."""
    if _dialect(session) == "postgresql":
        return cast(func.floor(func.extract("epoch", column - origin) / 86400), Integer)
    return cast(func.julianday(column) - func.julianday(origin.strftime("%Y-%m-%d %H:%M:%S")), Integer)


async def weekly_trend(
    session: AsyncSession, *, town: str | None, now: datetime, weeks: int = 12, community: str | None = None
) -> list[WeekRow]:
    """Cases created and completed per China-time week (Monday to Sunday), the last `weeks` weeks up to now."""
    local = now.astimezone(CHINA)
    monday = datetime(local.year, local.month, local.day, tzinfo=CHINA) - timedelta(days=local.weekday())
    origin = (monday - timedelta(weeks=weeks - 1)).astimezone(now.tzinfo)
    rows: dict[int, list[int]] = {i: [0, 0] for i in range(weeks)}
    for slot, column in ((0, col(Case.created_at)), (1, col(Case.completed_at))):
        bucket = _epoch_days(session, column, origin) / 7
        week = cast(bucket, Integer) if _dialect(session) == "sqlite" else func.floor(bucket)
        conds = _where(town=town, community=community, start=origin, end=now, column=column)
        result = await session.exec(  # type: ignore[call-overload]
            sa_select(week.label("w"), func.count()).where(*conds).group_by(literal_column("w"))
        )
        for w, n in result:
            if w is not None and 0 <= int(w) < weeks:
                rows[int(w)][slot] += int(n)
    start_day = origin.astimezone(CHINA).date()
    return [WeekRow(start_day + timedelta(weeks=i), c, d) for i, (c, d) in sorted(rows.items())]


# words most frequent in descriptions
STOP_WORDS = frozenset(
    """
    我们 你们 他们 她们 自己 这个 那个 这些 那些 这里 那里 这边 那边 什么 怎么 怎样 为什么 因为 所以 但是 而且
    如果 就是 还是 或者 可以 可能 需要 希望 想要 想要 一下 一些 一个 一点 一直 已经 现在 时候 没有 不是 还有
    问题 情况 帮忙 帮助 麻烦 谢谢 你好 您好 请问 家里 有个 那么 这么 非常 比较 特别 真的 好像 觉得 知道 不能
    不会 不要 我们家 个人 目前 今天 明天 昨天 之前 以后 之后 然后 电话 联系 地址 姓名 名字 社区 村里 镇上 东莞
    """.split()
)
_CJK_OR_WORD = re.compile(r"[\u4e00-\u9fff]")


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    """jieba with the town names kept whole (樟木头镇, not 樟木/头镇). Built once, on first use."""
    import jieba

    tok = jieba.Tokenizer()
    for t in TOWNS:
        tok.add_word(t.name, freq=200000)
        tok.add_word(t.short, freq=200000)
    for word in (
        "微心愿",
        "微实事",
        "轮椅",
        "助听器",
        "路灯",
        "减速带",
        "扶手",
        "学习用品",
        "低保户",
        "独居老人",
    ):
        tok.add_word(word, freq=100000)
    return tok


def top_words(
    texts: Iterable[str], *, n: int = 30, stop_words: frozenset[str] = STOP_WORDS
) -> list[tuple[str, int]]:
    """The `n` most frequent words (two characters or more, Chinese, not stop words, no numbers) in `texts`."""
    tok = _tokenizer()
    counter: Counter[str] = Counter()
    for text in texts:
        for word in tok.lcut(text or ""):
            word = word.strip()
            if len(word) < 2 or word in stop_words or not _CJK_OR_WORD.search(word):
                continue
            counter[word] += 1
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


async def description_words(
    session: AsyncSession,
    *,
    town: str | None,
    start: datetime,
    end: datetime,
    community: str | None = None,
    n: int = 30,
    sample: int = 5000,
) -> list[tuple[str, int]]:
    """Frequent words of the descriptions of cases created in [start, end): the newest `sample` descriptions are
    read (a bounded query) and segmented off the event loop."""
    conds = _where(town=town, community=community, start=start, end=end)
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(col(Case.description)).where(*conds).order_by(col(Case.id).desc()).limit(sample)
    )
    texts = [d for (d,) in rows if d]
    if not texts:
        return []
    return await asyncio.to_thread(top_words, texts, n=n)


@dataclass(slots=True)
class Demand:
    categories: list[DemandRow]
    items: list[DemandRow]
    by_town: list[tuple[str, str, int, int]]
    unmet: list[tuple[str, int]]
    words: list[tuple[str, int]]
    weeks: list[WeekRow]


async def demand(
    session: AsyncSession,
    *,
    town: str | None,
    start: datetime,
    end: datetime,
    now: datetime,
    community: str | None = None,
) -> Demand:
    kw: dict[str, Any] = {"town": town, "community": community}
    return Demand(
        categories=await demand_top(session, now=now, by="category", **kw),
        items=await demand_top(session, now=now, by="item", **kw),
        by_town=await top_category_by_town(session, now=now, **kw),
        unmet=await unmet_wishes_by_town(session, **kw),
        words=await description_words(session, start=start, end=end, **kw),
        weeks=await weekly_trend(session, now=now, **kw),
    )


# ------------------------------------------------------------------ the dashboard
@dataclass(slots=True)
class Dashboard:
    scope: Scope
    start: datetime
    end: datetime
    now: datetime
    counts: Counts
    timeliness: Timeliness
    satisfaction: Satisfaction
    pool: PoolUsage
    demand: Demand


async def dashboard(
    session: AsyncSession, *, scope: Scope, start: datetime, end: datetime, now: datetime
) -> Dashboard:
    kw: dict[str, Any] = {"town": scope.town, "community": scope.community}
    return Dashboard(
        scope=scope,
        start=start,
        end=end,
        now=now,
        counts=await counts(session, start=start, end=end, **kw),
        timeliness=await timeliness(session, start=start, end=end, now=now, **kw),
        satisfaction=await satisfaction(session, start=start, end=end, **kw),
        pool=await pool_usage(session, start=start, end=end, **kw),
        demand=await demand(session, start=start, end=end, now=now, **kw),
    )


def _pct(value: float | None) -> str:
    return f"{value * 100:.1f}%" if value is not None else "—"


def stats_workbook(d: Dashboard) -> bytes:
    """The dashboard's figures as an .xlsx file (one sheet per section)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "概况"
    day = lambda dt: dt.astimezone(CHINA).strftime("%Y-%m-%d")  # noqa: E731
    ws.append(["范围", d.scope.town or "全市", d.scope.community or ""])
    ws.append(["起始日期", day(d.start)])
    ws.append(["截止日期", day(d.end - timedelta(seconds=1))])
    ws.append(["诉求总数", d.counts.total])
    ws.append(["期间办结", d.counts.completed])
    ws.append(["当前超时", d.timeliness.overdue_now])
    ws.append(["评价发出", d.satisfaction.sent])
    ws.append(["评价回复", d.satisfaction.answered])
    ws.append(["回复率", _pct(d.satisfaction.response_rate)])
    ws.append(["平均满意度", d.satisfaction.average if d.satisfaction.average is not None else "—"])
    ws.append(["低分（≤2）", d.satisfaction.low])
    ws.append(["资源邀请", d.pool.offers])
    ws.append(["资源接受率", _pct(d.pool.accept_rate)])

    def sheet(title: str, header: list[str], rows: Iterable[Sequence[Any]]) -> None:
        s = wb.create_sheet(title)
        s.append(header)
        for row in rows:
            s.append(list(row))

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


# ------------------------------------------------------------------ 档案留存 (archive export)


async def archive_workbook(
    session: AsyncSession,
    *,
    scope: Scope,
    start: datetime,
    end: datetime,
    full_phone: bool,
    batch: int = 500,
    limit: int = ARCHIVE_MAX,
) -> tuple[bytes, int]:
    """Cases created in [start, end) with their whole timelines, as .xlsx (sheets 诉求 and 时间线). Phone numbers,
    also inside descriptions and notes, are masked unless `full_phone`. Returns (file, number of cases); raises
    ValueError when the range holds more than `limit` cases (the caller asks for a shorter range)."""
    from openpyxl import Workbook

    conds = _where(town=scope.town, community=scope.community, start=start, end=end)
    total = int(
        (await session.exec(select(func.count()).select_from(Case).where(*conds))).one()  # type: ignore[arg-type]
    )
    if total > limit:
        raise ValueError(f"该时间段共有{total}件诉求，超过单次导出上限{limit}件，请缩短时间范围")
    clean = (lambda s: s or "") if full_phone else mask_text
    phone_of = (lambda p: p or "") if full_phone else mask_phone
    local = lambda dt: dt.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if dt else ""  # noqa: E731

    wb = Workbook(write_only=True)
    cases_ws = wb.create_sheet("诉求")
    events_ws = wb.create_sheet("时间线")
    cases_ws.append(
        [
            "编号",
            "类型",
            "状态",
            "类别",
            "物品/事项",
            "诉求内容",
            "镇街",
            "村（社区）",
            "地址",
            "受助人",
            "联系电话",
            "渠道",
            "提交时间",
            "办结时间",
            "归档时间",
            "满意度",
        ]
    )
    events_ws.append(["编号", "时间", "操作人类型", "操作人", "事件", "原状态", "新状态", "说明"])
    last_id = 0
    while True:
        rows = list(
            await session.exec(  # type: ignore[call-overload]
                sa_select(Case, col(Resident.phone), col(Survey.score))
                .join(Resident, col(Resident.id) == col(Case.resident_id), isouter=True)
                .join(Survey, col(Survey.case_id) == col(Case.id), isouter=True)
                .where(*conds, col(Case.id) > last_id)
                .order_by(col(Case.id))
                .limit(batch)
            )
        )
        if not rows:
            break
        ids = [c.id for c, _, _ in rows]
        events = await session.exec(
            select(CaseEvent)
            .where(col(CaseEvent.case_id).in_(ids))
            .order_by(col(CaseEvent.case_id), col(CaseEvent.at), col(CaseEvent.id))
        )
        numbers = {c.id: c.case_no for c, _, _ in rows}
        for c, resident_phone, score in rows:
            cases_ws.append(
                [
                    c.case_no,
                    KIND_LABEL.get(c.kind, c.kind),
                    STATE_LABEL.get(c.status, c.status),
                    c.category or "",
                    c.item or "",
                    clean(c.description),
                    c.town,
                    c.community or "",
                    clean(c.address),
                    c.beneficiary or "",
                    phone_of(c.contact_phone or resident_phone),
                    CHANNELS.get(c.channel, c.channel),
                    local(c.created_at),
                    local(c.completed_at),
                    local(c.closed_at),
                    score if score is not None else "",
                ]
            )
        for e in events:
            events_ws.append(
                [
                    numbers[e.case_id],
                    local(e.at),
                    e.actor_type,
                    e.actor_name or "",
                    e.kind,
                    STATE_LABEL.get(e.from_status or "", e.from_status or ""),
                    STATE_LABEL.get(e.to_status or "", e.to_status or ""),
                    clean(e.note),
                ]
            )
        last_id = ids[-1]  # type: ignore[assignment]
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), total


# ------------------------------------------------------------------ 项目公示 (public disclosure, no personal data)
@dataclass(frozen=True, slots=True)
class PublicProject:
    """A completed micro-project: public works, so item, category, town and community may be shown."""

    item: str
    category: str
    town: str
    community: str
    month: str


@dataclass(frozen=True, slots=True)
class PublicWish:
    """A fulfilled micro-wish: only category, town and month. No name, phone, address, item or description."""

    category: str
    town: str
    month: str


@dataclass(slots=True)
class PublicFigures:
    wishes_done: int = 0
    projects_done: int = 0
    by_town: list[tuple[str, int, int]] = field(default_factory=list)  # town, wishes, projects
    wish_categories: list[tuple[str, int]] = field(default_factory=list)
    project_categories: list[tuple[str, int]] = field(default_factory=list)


def _done(town: str | None) -> list[Any]:
    conds: list[Any] = [col(Case.status).in_(DONE_STATES), col(Case.completed_at).is_not(None)]
    if town is not None:
        conds.append(col(Case.town) == town)
    return conds


def _month(dt: datetime | None) -> str:
    if dt is None:
        return ""
    local = dt.astimezone(CHINA)
    return f"{local.year}年{local.month}月"


async def public_figures(session: AsyncSession, *, town: str | None = None) -> PublicFigures:
    out = PublicFigures()
    wish = func.sum(case((col(Case.kind) == "micro_wish", 1), else_=0))
    proj = func.sum(case((col(Case.kind) == "micro_project", 1), else_=0))
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(col(Case.town), wish, proj).where(*_done(town)).group_by(col(Case.town))
    )
    out.by_town = sorted(
        ((t, int(w or 0), int(p or 0)) for t, w, p in rows), key=lambda r: (-(r[1] + r[2]), r[0])
    )
    out.wishes_done = sum(r[1] for r in out.by_town)
    out.projects_done = sum(r[2] for r in out.by_town)
    out.wish_categories = await _grouped(
        session, col(Case.category), [*_done(town), col(Case.kind) == "micro_wish"], null="其他"
    )
    out.project_categories = await _grouped(
        session, col(Case.category), [*_done(town), col(Case.kind) == "micro_project"], null="其他"
    )
    return out


async def public_projects(
    session: AsyncSession, *, town: str | None = None, page: int = 1, per_page: int = 30
) -> tuple[list[PublicProject], bool]:
    """Completed micro-projects, newest first; returns (rows, has_next). Only public columns are selected."""
    rows = list(
        await session.exec(  # type: ignore[call-overload]
            sa_select(
                col(Case.item),
                col(Case.category),
                col(Case.town),
                col(Case.community),
                col(Case.completed_at),
            )
            .where(*_done(town), col(Case.kind) == "micro_project")
            .order_by(col(Case.completed_at).desc(), col(Case.id).desc())
            .offset((page - 1) * per_page)
            .limit(per_page + 1)
        )
    )
    out = [
        PublicProject(item or category or "微实事", category or "其他", t, community or "", _month(at))
        for item, category, t, community, at in rows[:per_page]
    ]
    return out, len(rows) > per_page


async def public_wishes(
    session: AsyncSession, *, town: str | None = None, page: int = 1, per_page: int = 30
) -> tuple[list[PublicWish], bool]:
    """Fulfilled micro-wishes, newest first: category, town and month only."""
    rows = list(
        await session.exec(  # type: ignore[call-overload]
            sa_select(col(Case.category), col(Case.town), col(Case.completed_at))
            .where(*_done(town), col(Case.kind) == "micro_wish")
            .order_by(col(Case.completed_at).desc(), col(Case.id).desc())
            .offset((page - 1) * per_page)
            .limit(per_page + 1)
        )
    )
    out = [PublicWish(category or "其他", t, _month(at)) for category, t, at in rows[:per_page]]
    return out, len(rows) > per_page


# ------------------------------------------------------------------ 信息发布 (notices)
class NoticeError(Exception):
    """A domain error with a message staff can read."""


async def public_notices(
    session: AsyncSession,
    *,
    town: str | None = None,
    page: int = 1,
    per_page: int = 20,
    now: datetime | None = None,
) -> tuple[list[Notice], bool]:
    """Published notices, newest first: city-wide ones and, when `town` is given, that town's."""
    q = select(Notice)
    if town is not None:
        q = q.where(or_(col(Notice.town).is_(None), col(Notice.town) == town))
    if now is not None:
        q = q.where(col(Notice.published_at) <= now)
    q = q.order_by(col(Notice.published_at).desc(), col(Notice.id).desc()).offset((page - 1) * per_page)
    rows = list(await session.exec(q.limit(per_page + 1)))
    return rows[:per_page], len(rows) > per_page


async def get_public_notice(
    session: AsyncSession, *, notice_id: int, now: datetime | None = None
) -> Notice | None:
    notice = await session.get(Notice, notice_id)
    if notice is None or (now is not None and notice.published_at > now):
        return None
    return notice


def can_publish(staff: Staff) -> bool:
    return staff.role in SUPERVISORS


def _may_edit(staff: Staff, notice: Notice) -> bool:
    return staff.role in CITY_ROLES or bool(
        staff.role in SUPERVISORS and staff.town and notice.town == staff.town
    )


async def notices_for_staff(session: AsyncSession, *, staff: Staff, limit: int = 100) -> list[Notice]:
    """The notices a supervisor may edit: all for city roles, their own town's for a town supervisor."""
    if not can_publish(staff):
        raise NoticeError("只有负责人可以发布公告")
    q = select(Notice)
    if staff.role not in CITY_ROLES:
        q = q.where(col(Notice.town) == (staff.town or "\x00"))
    q = q.order_by(col(Notice.published_at).desc(), col(Notice.id).desc()).limit(limit)
    return list(await session.exec(q))


async def get_notice_for(session: AsyncSession, *, staff: Staff, notice_id: int) -> Notice | None:
    notice = await session.get(Notice, notice_id)
    if notice is None or not _may_edit(staff, notice):
        return None
    return notice


async def save_notice(
    session: AsyncSession,
    *,
    staff: Staff,
    title: str,
    body: str,
    town: str | None,
    now: datetime,
    notice: Notice | None = None,
) -> Notice:
    """Publish a new notice (``notice=None``) or edit one. A town supervisor publishes for their own town only;
    city roles for the whole city (``town=None``) or any one town."""
    if not can_publish(staff):
        raise NoticeError("只有负责人可以发布公告")
    title, body = title.strip(), body.strip()
    if not title:
        raise NoticeError("请填写标题")
    if len(title) > 128:
        raise NoticeError("标题不能超过128个字")
    if not body:
        raise NoticeError("请填写正文")
    if len(body) > 20_000:
        raise NoticeError("正文过长")
    town = (town or "").strip() or None
    if staff.role in CITY_ROLES:
        if town is not None and town not in TOWN_NAMES:
            raise NoticeError("请选择正确的镇街")
    else:
        town = staff.town
    if notice is None:
        notice = Notice(title=title, body=body, town=town, published_at=now, author_id=staff.id)
        session.add(notice)
    else:
        if not _may_edit(staff, notice):
            raise NoticeError("您不能修改这条公告")
        notice.title, notice.body, notice.town = title, body, town
        session.add(notice)
    await session.flush()
    return notice


async def delete_notice(session: AsyncSession, *, staff: Staff, notice: Notice) -> None:
    if not can_publish(staff) or not _may_edit(staff, notice):
        raise NoticeError("您不能删除这条公告")
    await session.delete(notice)
    await session.flush()


__all__ = [
    "ARCHIVE_MAX",
    "Dashboard",
    "NoticeError",
    "Scope",
    "archive_workbook",
    "counts",
    "dashboard",
    "demand",
    "public_figures",
    "public_notices",
    "public_projects",
    "public_wishes",
    "satisfaction",
    "save_notice",
    "scope_for",
    "stats_workbook",
    "timeliness",
    "top_words",
]
