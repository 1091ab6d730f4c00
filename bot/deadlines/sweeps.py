"""Periodic sweeps (超时提醒): plain ``async def`` jobs with ``now`` injectable and their dependencies as arguments.

Each sweep selects due rows through an index, marks them and writes its outbox rows in ONE transaction, with a
``dedupe_key`` per message, so a crash, a restart or a second scheduler never loses or doubles a message: on
PostgreSQL the candidate rows are locked with ``FOR UPDATE SKIP LOCKED`` (two schedulers share the work), on SQLite
``BEGIN IMMEDIATE`` serialises the sweeps. Every sweep catches and logs its own errors and returns a count.

Order of the escalation ladder for one stage deadline:
  remind (``deadline - policy lead``; the claimer, else the town's staff; community workers for verification)
  → escalate (deadline passed; the town supervisors)
  → escalate to the city (``CITY_AFTER_WORKING_DAYS`` working days later; the city supervisors)
and the resident hears "仍在办理中" once when the stage runs past its deadline.

These sweeps write only what this package owns: deadline marks on the rows and outbox messages. A sweep that must
move a case (the survey timeout closes it) lives with the cases, in ``bot.cases.sweeps``, which also runs every
minute's sweeps in ladder order (``run_sweeps``); this package never imports the case package. Offer timeouts hand
the next step to the matching engine through an explicit ``hook`` argument the scheduler passes in.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import Sessions, transaction
from bot.deadlines.bulk import id_in, insert_outbox
from bot.deadlines.sla import (
    CITY_AFTER_WORKING_DAYS,
    DEFAULT_POLICIES,
    STAGE_LABEL,
    STAGE_OF_STATUS,
    Policy,
    default_policy,
    policy_for,
)
from bot.deadlines.staff_messages import StaffMessages, outbox_defaults
from bot.deadlines.waking import DEFAULT_WAKING, WakingHours
from bot.deadlines.workdays import add_working_days
from bot.models import Case, Offer, Resident, Resource, SlaPolicy, Staff, Survey
from bot.states import (
    CASE_KIND_LABEL,
    ActorType,
    CaseStatus,
    MessageKind,
    OfferStatus,
    Role,
    SurveyStatus,
)
from reference.privacy import normalize_phone

log = logging.getLogger(__name__)
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
OPEN_STATUSES = tuple(STAGE_OF_STATUS)
KIND_LABEL: dict[str, str] = dict(CASE_KIND_LABEL)

# Statuses without a stage clock. The sweeps filter with NOT IN so that the database walks the deadline index
# (SQLite would otherwise pick the status index, which covers nearly every open row).
NO_CLOCK_STATUSES = (
    CaseStatus.COMPLETED,
    CaseStatus.CLOSED,
    CaseStatus.CANCELLED,
    CaseStatus.REJECTED,
    CaseStatus.MERGED,
)


def _still_open() -> Any:
    return col(Case.status).not_in(NO_CLOCK_STATUSES)


OfferTimeoutHook = Callable[[AsyncSession, Offer, datetime], Awaitable[None]]

_CASE_COLS: tuple[Any, ...] = (
    Case.id,
    Case.case_no,
    Case.kind,
    Case.status,
    Case.town,
    Case.community,
    Case.claimed_by_id,
    Case.resident_id,
    Case.stage_deadline,
)


def _pg(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def _locked(stmt: Any, session: AsyncSession) -> Any:
    return stmt.with_for_update(skip_locked=True) if _pg(session) else stmt


def _local(dt: datetime) -> str:
    """ "06月10日09:30" (China time); formatted by hand: strftime with a non-ASCII format cost ~10 µs a call."""
    d = dt.astimezone(CHINA)
    return f"{d.month:02d}月{d.day:02d}日{d.hour:02d}:{d.minute:02d}"


async def queue_many(session: AsyncSession, rows: Sequence[dict[str, Any]], *, now: datetime) -> int:
    """Insert outbox rows in bulk, skipping any whose dedupe_key is already queued. Returns rows inserted."""
    if not rows:
        return 0
    # Core, not the ORM bulk path; on PostgreSQL one statement, one array per column (bot.deadlines.bulk)
    return await insert_outbox(session, rows, outbox_defaults(now))


# what the sweeps read of a staff member (rows, not entities: no identity map, no password hash)
_STAFF_COLS: tuple[Any, ...] = (
    Staff.id,
    Staff.username,
    Staff.display_name,
    Staff.role,
    Staff.town,
    Staff.community,
    Staff.openid,
)


class _StaffIndex:
    """The reachable staff of some towns, loaded in one query (rows with the columns of ``_STAFF_COLS``)."""

    def __init__(self, staff: Sequence[Any]) -> None:
        self.by_id = {s.id: s for s in staff}
        self.by_town: dict[str | None, list[Any]] = defaultdict(list)
        self._cache: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
        for s in staff:
            self.by_town[s.town].append(s)

    @classmethod
    async def load(cls, session: AsyncSession, towns: set[str], *, claimers: set[int]) -> _StaffIndex:
        conds = [col(Staff.role).in_((Role.CITY_SUPERVISOR,))]
        if towns:
            conds.append(col(Staff.town).in_(sorted(towns)))
        if claimers:
            conds.append(col(Staff.id).in_(sorted(claimers)))
        stmt: Any = sa.select(*_STAFF_COLS).where(
            col(Staff.active) == True,  # noqa: E712
            col(Staff.openid).is_not(None),
            sa.or_(*conds),
        )
        rows: Sequence[Any] = (await session.exec(stmt)).all()
        return cls(rows)

    def town(self, town: str, roles: tuple[str, ...]) -> list[Any]:
        key = (town, roles)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = [s for s in self.by_town.get(town, []) if s.role in roles]
        return found

    def city(self) -> list[Any]:
        return [s for lst in self.by_town.values() for s in lst if s.role == Role.CITY_SUPERVISOR]

    def responsible(self, case: Any, stage: str) -> list[Any]:
        """The claimer; unclaimed: the community's workers for verification, else the town's staff."""
        if case.claimed_by_id is not None and case.claimed_by_id in self.by_id:
            return [self.by_id[case.claimed_by_id]]
        if stage == "submitted":
            workers = [
                s for s in self.town(case.town, (Role.COMMUNITY_WORKER,)) if s.community == case.community
            ]
            if workers:
                return workers
        return self.town(case.town, (Role.TOWN_STAFF, Role.TOWN_SUPERVISOR))


async def _policies(session: AsyncSession) -> dict[tuple[str, str], Policy]:
    """Every (kind, stage) policy, from one query: the kind's row, else the "any" row, else the default."""
    rows = {(r.kind, r.stage): r for r in (await session.exec(select(SlaPolicy))).all()}
    out: dict[tuple[str, str], Policy] = {}
    for kind in KIND_LABEL:
        for stage in set(STAGE_OF_STATUS.values()) | {"offer", "survey"}:
            row = rows.get((kind, stage)) or rows.get(("any", stage))
            if row is not None:
                out[(kind, stage)] = Policy(
                    row.kind, row.stage, row.amount, row.unit, row.remind_before_hours
                )
            elif (p := default_policy(kind, stage)) is not None:
                out[(kind, stage)] = p
    return out


def _max_lead(policies: dict[tuple[str, str], Policy]) -> timedelta:
    leads = [p.lead for p in policies.values()] or [p.lead for p in DEFAULT_POLICIES]
    return max(leads)


async def guarded_sweep(what: str, sessions: Sessions, work: Callable[[AsyncSession], Awaitable[int]]) -> int:
    """Run one sweep's ``work`` in one transaction; an error rolls it back, is logged and counts as 0."""
    try:
        async with transaction(sessions) as session:
            return await work(session)
    except Exception:
        log.exception("the %s failed", what)
        return 0


def _stage(case: Any) -> str:
    status: str = case.status
    return STAGE_OF_STATUS.get(status, status)


def _deadline_key(prefix: str, case: Any, stage: str) -> str:
    """One message per case, stage and deadline: a new deadline may be reminded again, the same one never."""
    return f"{prefix}:{case.id}:{stage}:{case.stage_deadline.isoformat()}"


async def _due_cases(session: AsyncSession, deadline: Any, *where: Any, batch: int) -> Sequence[Any]:
    """Open cases past ``deadline`` (a condition on the stage deadline) and ``where``, earliest first, locked."""
    stmt = (
        sa.select(*_CASE_COLS)
        .where(deadline, _still_open(), *where)
        .order_by(col(Case.stage_deadline))
        .limit(batch)
    )
    rows: Sequence[Any] = (await session.exec(_locked(stmt, session))).all()
    return rows


async def _queue_and_mark(
    session: AsyncSession,
    messages: Sequence[dict[str, Any]] | StaffMessages,
    *,
    case_ids: list[int],
    mark: Any,
    now: datetime,
) -> None:
    """Queue the sweep's messages and stamp ``mark`` on its cases, in the sweep's transaction."""
    if isinstance(messages, StaffMessages):
        await messages.queue(session, now=now)
    else:
        await queue_many(session, messages, now=now)
    # no Case entity is loaded in the sweep's session: nothing to synchronise (and no RETURNING of the ids)
    await session.exec(
        sa.update(Case)
        .where(id_in(col(Case.id), case_ids, session))
        .values({mark: now})
        .execution_options(synchronize_session=False)
    )


# ------------------------------------------------------------------------------------------ case deadlines
async def remind_due(*, sessions: Sessions, now: datetime, batch: int = 2000) -> int:
    """Remind the responsible staff before a stage deadline (each deadline once). Returns cases reminded."""

    async def work(session: AsyncSession) -> int:
        policies = await _policies(session)
        rows = await _due_cases(
            session,
            col(Case.stage_deadline) <= now + _max_lead(policies),
            col(Case.reminded_at).is_(None),
            col(Case.awaiting_resident) == False,  # noqa: E712
            batch=batch,
        )
        leads = {key: p.lead for key, p in policies.items()}
        due = []
        for c in rows:
            stage = _stage(c)
            lead = leads.get((c.kind, stage))
            if lead is not None and c.stage_deadline - lead <= now:
                due.append((c, stage))
        if not due:
            return 0
        staff = await _StaffIndex.load(
            session, {c.town for c, _ in due}, claimers={c.claimed_by_id for c, _ in due if c.claimed_by_id}
        )
        messages = StaffMessages(MessageKind.REMINDER)
        for c, stage in due:
            overdue = c.stage_deadline <= now
            head = "【已超时】" if overdue else "【即将到期】"
            when = _local(c.stage_deadline)
            text = (
                f"{head}{KIND_LABEL.get(c.kind, '')}诉求{c.case_no}（{c.town}，{STAGE_LABEL.get(stage, stage)}）"
                f"{'已于' if overdue else '将于'}{when}到期，请及时处理。"
            )
            messages.add(
                staff=staff.responsible(c, stage),
                case=c,
                key=_deadline_key("remind", c, stage),
                text=text,
                status=f"{when}到期",
            )
        await _queue_and_mark(
            session, messages, case_ids=[c.id for c, _ in due], mark=Case.reminded_at, now=now
        )
        return len(due)

    return await guarded_sweep("reminder sweep", sessions, work)


async def escalate_due(*, sessions: Sessions, now: datetime, batch: int = 2000) -> int:
    """A stage deadline passed: tell the town supervisors (once per deadline)."""

    async def work(session: AsyncSession) -> int:
        rows = await _due_cases(
            session,
            col(Case.stage_deadline) <= now,
            col(Case.escalated_at).is_(None),
            col(Case.awaiting_resident) == False,  # noqa: E712
            batch=batch,
        )
        if not rows:
            return 0
        staff = await _StaffIndex.load(session, {c.town for c in rows}, claimers=set())
        messages = StaffMessages(MessageKind.ESCALATION)
        for c in rows:
            stage = _stage(c)
            owner = staff.by_id.get(c.claimed_by_id) if c.claimed_by_id else None
            text = (
                f"【超时督办】{KIND_LABEL.get(c.kind, '')}诉求{c.case_no}（{c.town}，{STAGE_LABEL.get(stage, stage)}）"
                f"已于{_local(c.stage_deadline)}超时"
                f"{'，负责人：' + (owner.display_name or owner.username) if owner else '，尚无人认领'}。请督促办理。"
            )
            messages.add(
                staff=staff.town(c.town, (Role.TOWN_SUPERVISOR,)),
                case=c,
                key=_deadline_key("escalate", c, stage),
                text=text,
                status="已超时",
            )
        await _queue_and_mark(
            session, messages, case_ids=[c.id for c in rows], mark=Case.escalated_at, now=now
        )
        return len(rows)

    return await guarded_sweep("escalation sweep", sessions, work)


async def escalate_city_due(*, sessions: Sessions, now: datetime, batch: int = 2000) -> int:
    """Still overdue ``CITY_AFTER_WORKING_DAYS`` working days after the deadline: tell the city supervisors."""

    async def work(session: AsyncSession) -> int:
        rows = await _due_cases(
            session,
            col(Case.stage_deadline) <= now - timedelta(days=CITY_AFTER_WORKING_DAYS),
            col(Case.escalated_at).is_not(None),
            col(Case.escalated_city_at).is_(None),
            col(Case.awaiting_resident) == False,  # noqa: E712
            batch=batch,
        )
        due = [c for c in rows if add_working_days(c.stage_deadline, CITY_AFTER_WORKING_DAYS) <= now]
        if not due:
            return 0
        staff = await _StaffIndex.load(session, set(), claimers=set())
        messages = StaffMessages(MessageKind.ESCALATION)
        for c in due:
            stage = _stage(c)
            text = (
                f"【市级督办】{c.town}{KIND_LABEL.get(c.kind, '')}诉求{c.case_no}（{STAGE_LABEL.get(stage, stage)}）"
                f"自{_local(c.stage_deadline)}起超时已逾{CITY_AFTER_WORKING_DAYS}个工作日，请关注。"
            )
            messages.add(
                staff=staff.city(),
                case=c,
                key=_deadline_key("city", c, stage),
                text=text,
                status="超时待督办",
            )
        await _queue_and_mark(
            session, messages, case_ids=[c.id for c in due], mark=Case.escalated_city_at, now=now
        )
        return len(due)

    return await guarded_sweep("city escalation sweep", sessions, work)


async def nudge_residents(*, sessions: Sessions, now: datetime, batch: int = 2000) -> int:
    """A stage ran past its deadline: the resident hears "仍在办理中" (once per stage deadline)."""

    async def work(session: AsyncSession) -> int:
        rows = await _due_cases(
            session,
            col(Case.stage_deadline) <= now,
            col(Case.resident_nudged_at).is_(None),
            col(Case.resident_id).is_not(None),
            batch=batch,
        )
        if not rows:
            return 0
        residents = {
            r.id: r
            for r in (
                await session.exec(
                    select(Resident).where(col(Resident.id).in_({c.resident_id for c in rows}))
                )
            ).all()
        }
        messages = []
        for c in rows:
            r = residents.get(c.resident_id)
            if r is None or not r.subscribed:
                continue
            messages.append(
                {
                    "openid": r.openid,
                    "kind": MessageKind.PROGRESS,
                    "text": (
                        f"您的{KIND_LABEL.get(c.kind, '')}诉求（编号{c.case_no}）仍在办理中，"
                        "工作人员正在跟进，请您耐心等待。如有新情况可直接回复告诉我们。"
                    ),
                    "case_id": c.id,
                    "template": {"case_no": c.case_no[:20], "status": "仍在办理中"},
                    "dedupe_key": _deadline_key("nudge", c, _stage(c)),
                }
            )
        await _queue_and_mark(
            session, messages, case_ids=[c.id for c in rows], mark=Case.resident_nudged_at, now=now
        )
        return len(rows)

    return await guarded_sweep("resident nudge sweep", sessions, work)


# ------------------------------------------------------------------------------------------ offers and surveys
_Answerable = TypeVar("_Answerable", Offer, Survey)


async def _to_remind(
    session: AsyncSession,
    model: type[_Answerable],
    *,
    status: str,
    stage: str,
    default_lead: timedelta,
    now: datetime,
    batch: int,
) -> Sequence[_Answerable]:
    """Rows still ``status`` whose answer deadline falls within the stage policy's lead, not yet reminded; locked."""
    policy = await policy_for(session, "any", stage)
    lead = policy.lead if policy else default_lead
    stmt = (
        select(model)
        .where(
            model.status == status,
            col(model.deadline) <= now + lead,
            col(model.deadline) > now,
            col(model.reminded_at).is_(None),
        )
        .limit(batch)
    )
    return (await session.exec(_locked(stmt, session))).all()  # type: ignore[no-any-return]


async def timed_out(
    session: AsyncSession, model: type[_Answerable], *, status: str, now: datetime, batch: int
) -> Sequence[_Answerable]:
    """Rows still ``status`` whose answer deadline has passed, earliest first; locked."""
    stmt = (
        select(model)
        .where(model.status == status, col(model.deadline) <= now)
        .order_by(col(model.deadline))
        .limit(batch)
    )
    return (await session.exec(_locked(stmt, session))).all()  # type: ignore[no-any-return]


async def offer_reminders(
    *, sessions: Sessions, now: datetime, batch: int = 500, waking: WakingHours = DEFAULT_WAKING
) -> int:
    """Remind a donor once before their offer's answer deadline (in waking hours)."""

    async def work(session: AsyncSession) -> int:
        offers = await _to_remind(
            session,
            Offer,
            status=OfferStatus.OFFERED,
            stage="offer",
            default_lead=timedelta(hours=4),
            now=now,
            batch=batch,
        )
        messages = []
        for offer in offers:
            resource = await session.get(Resource, offer.resource_id)
            case = await session.get(Case, offer.case_id)
            offer.reminded_at = now
            session.add(offer)
            if resource is None or not resource.openid or case is None:
                continue
            messages.append(
                {
                    "openid": resource.openid,
                    "recipient_type": ActorType.VOLUNTEER,
                    "kind": MessageKind.OFFER,
                    "text": (
                        f"您好！{case.town}的{KIND_LABEL.get(case.kind, '')}（编号{case.case_no}）正等您答复是否认领，"
                        f"将于{_local(offer.deadline)}截止。"  # type: ignore[arg-type]
                    ),
                    "case_id": case.id,
                    "template": {"case_no": case.case_no[:20], "status": f"{_local(offer.deadline)}前答复"},  # type: ignore[arg-type]
                    "dedupe_key": f"offer-remind:{offer.id}",
                    "next_attempt_at": waking.clamp(now),
                }
            )
        await queue_many(session, messages, now=now)
        return len(offers)

    return await guarded_sweep("offer reminder sweep", sessions, work)


async def offer_timeouts(
    *, sessions: Sessions, now: datetime, hook: OfferTimeoutHook | None, batch: int = 500
) -> int:
    """Offers unanswered by their deadline become ``timeout``; the matching engine's hook offers the next donor."""

    async def work(session: AsyncSession) -> int:
        done = 0
        for offer in await timed_out(session, Offer, status=OfferStatus.OFFERED, now=now, batch=batch):
            result = await session.exec(
                sa.update(Offer)
                .where(col(Offer.id) == offer.id, col(Offer.status) == OfferStatus.OFFERED)
                .values(status=OfferStatus.TIMEOUT, answered_at=now)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                continue
            offer.status = OfferStatus.TIMEOUT
            offer.answered_at = now
            await session.exec(
                sa.update(Resource)
                .where(col(Resource.id) == offer.resource_id)
                .values(timeouts=Resource.timeouts + 1)
            )
            if hook is not None:
                async with session.begin_nested():
                    await hook(session, offer, now)
            done += 1
        return done

    return await guarded_sweep("offer timeout sweep", sessions, work)


async def survey_reminders(
    *, sessions: Sessions, now: datetime, batch: int = 500, waking: WakingHours = DEFAULT_WAKING
) -> int:
    """One reminder for an unanswered survey, ``lead`` before its deadline, in waking hours: by WeChat, or by SMS
    (template ``survey_reminder``, with the short link) to the case's phone when the resident has no WeChat."""

    async def work(session: AsyncSession) -> int:
        surveys = await _to_remind(
            session,
            Survey,
            status=SurveyStatus.SENT,
            stage="survey",
            default_lead=timedelta(hours=24),
            now=now,
            batch=batch,
        )
        messages = []
        for sv in surveys:
            sv.reminded_at = now
            session.add(sv)
            resident = await session.get(Resident, sv.resident_id) if sv.resident_id else None
            case = await session.get(Case, sv.case_id)
            if case is None or (resident is not None and resident.survey_opt_out):
                continue
            by_sms = resident is None or not resident.subscribed
            phone = normalize_phone(case.contact_phone) if by_sms else None
            if by_sms and phone is None:
                continue
            sms = {"sms_template": "survey_reminder"} if by_sms else {}
            messages.append(
                {
                    "openid": "" if by_sms or resident is None else resident.openid,
                    "phone": phone,
                    "kind": MessageKind.SURVEY,
                    "text": (
                        f"温馨提醒：您的诉求（编号{case.case_no}）已办结，还差您一个评价。"
                        "回复数字 1–5 即可（5 非常满意，1 非常不满意），或点这里：{link}"
                    ),
                    "case_id": case.id,
                    "template": {"case_no": case.case_no[:20], "status": "请评价本次服务", **sms},
                    "link": f"sign:survey:{sv.id}",
                    "dedupe_key": f"survey-remind:{sv.id}:{sv.deadline.isoformat() if sv.deadline else ''}",
                    "next_attempt_at": waking.clamp(now),
                }
            )
        await queue_many(session, messages, now=now)
        return len(surveys)

    return await guarded_sweep("survey reminder sweep", sessions, work)


# ------------------------------------------------------------------------------------------ daily digest
async def staff_digest(
    *,
    sessions: Sessions,
    now: datetime,
    soon: timedelta = timedelta(hours=24),
    notes: dict[str | None, list[str]] | None = None,
) -> int:
    """Each reachable staff member gets their overdue and soon-due counts once a day (nothing when both are 0 and
    there is no note). `notes`: extra lines by town (None: the city-wide digest), e.g. the early warnings."""
    notes = notes or {}

    async def work(session: AsyncSession) -> int:
        overdue = sa.func.sum(sa.case((col(Case.stage_deadline) <= now, 1), else_=0))
        soon_due = sa.func.sum(sa.case((col(Case.stage_deadline) > now, 1), else_=0))
        base = sa.select(Case.town, overdue, soon_due).where(  # type: ignore[call-overload]
            col(Case.stage_deadline) <= now + soon, _still_open()
        )
        by_town = {
            t: (int(o or 0), int(s or 0)) for t, o, s in (await session.exec(base.group_by(Case.town))).all()
        }
        mine_q = sa.select(Case.claimed_by_id, overdue, soon_due).where(  # type: ignore[call-overload]
            col(Case.stage_deadline) <= now + soon,
            _still_open(),
            col(Case.claimed_by_id).is_not(None),
        )
        mine = {
            sid: (int(o or 0), int(s or 0))
            for sid, o, s in (await session.exec(mine_q.group_by(Case.claimed_by_id))).all()
        }
        staff = (
            await session.exec(
                select(Staff).where(Staff.active == True, col(Staff.openid).is_not(None))  # noqa: E712
            )
        ).all()
        day = now.astimezone(CHINA).strftime("%Y-%m-%d")
        messages = []
        for s in staff:
            if s.role in (Role.CITY_SUPERVISOR, Role.ADMIN):
                o = sum(v[0] for v in by_town.values())
                n = sum(v[1] for v in by_town.values())
                scope = "全市"
            else:
                o, n = by_town.get(s.town or "", (0, 0))
                scope = s.town or ""
            my_o, my_n = mine.get(s.id, (0, 0))
            extra = notes.get(None if s.role in (Role.CITY_SUPERVISOR, Role.ADMIN) else (s.town or ""), [])
            if o == 0 and n == 0 and not extra:
                continue
            text = f"【每日待办】{scope}：已超时 {o} 件，24小时内到期 {n} 件"
            if s.role not in (Role.CITY_SUPERVISOR, Role.ADMIN):
                text += f"；其中您负责的：已超时 {my_o} 件，即将到期 {my_n} 件"
            messages.append(
                {
                    "openid": s.openid,
                    "recipient_type": ActorType.STAFF,
                    "kind": MessageKind.DIGEST,
                    "text": text + "。" + "".join("\n" + line for line in extra[:10]),
                    "template": {"status": f"超时{o}件 将到期{n}件"[:20]},
                    "link": "/staff/cases",
                    "dedupe_key": f"digest:{s.id}:{day}",
                }
            )
        return await queue_many(session, messages, now=now)

    return await guarded_sweep("daily digest", sessions, work)
