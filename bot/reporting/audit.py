"""The audit log as supervisors read it (操作日志): Chinese labels for the action codes, filters (action, staff
member, town, date range) and pages, within the reader's jurisdiction.

A town supervisor sees the actions of their own town's staff; city roles see everyone's and may narrow to a town.
Rows are written by :func:`bot.cases.access.audit`; this module only reads them. The details are shown through
:func:`reference.privacy.mask_text`, so a phone number typed into a note never appears in full here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select as sa_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import ACTION_LABEL, CITY_ROLES, SUPERVISORS
from bot.models import AuditLog, Case, Staff
from reference.privacy import mask_text

#: what the staff form's ``action`` field may carry besides the lifecycle's actions (``case_<op>`` rows)
_CASE_OPS = {
    **ACTION_LABEL,
    "ask": "向居民提问",
    "note": "添加备注",
    "edit": "修改诉求信息",
    "reassign": "改派",
}
_ADMIN_STAFF_OPS = {
    "toggle": "启用/停用账号",
    "password": "重置密码",
    "role": "修改角色",
    "unbind": "解绑微信",
}
_ADMIN_CATEGORY_OPS = {"toggle": "启用/停用类别", "rename": "类别改名", "add": "添加类别"}

#: every action code the project writes, with the label staff read; grouped for the filter's drop-down
ACTION_GROUPS: dict[str, dict[str, str]] = {
    "账号与登录": {
        "login": "登录",
        "password": "修改密码",
        "bind_wechat": "绑定微信",
        "bind_code": "生成微信绑定码",
    },
    "诉求办理": {
        "create_case": "代录诉求",
        "reveal_phone": "查看完整号码",
        "claim_conflict": "认领冲突",
        "case_clear_flag": "处理提醒标记",
        "case_offer": "邀请爱心资源",
        "batch_offer": "批量对接爱心资源",
        "outbox_retry": "重新发送消息",
        "web_query": "居民网页查询（短信验证码）",
        "case_supervise": "诉求：市级督办",
        "case_supervision_answer": "诉求：答复督办",
        "policy_edit": "修改政策目录",
        "fund_allocate": "登记帮扶资金拨款",
        "erase_case": "按书面申请删除个人信息",
        "erase_resident": "居民要求删除个人信息",
        "retention_sweep": "到期个人信息匿名化",
        "duty_edit": "修改权责清单",
        "town_supervision_press": "镇街督办：发起",
        "town_supervision_answer": "镇街督办：答复",
        **{f"case_{op}": f"诉求：{label}" for op, label in _CASE_OPS.items()},
    },
    "爱心资源库": {
        "pool_import": "导入资源库",
        "pool_export": "导出资源库",
        "pool_edit": "修改爱心资源",
        "pool_active": "启用/停用爱心资源",
        "pool_bind_code": "生成资源绑定码",
        "reveal_donor_phone": "查看爱心资源完整电话",
        "offer_answer_recorded": "代为记录爱心人士答复",
        "offer_withdraw": "撤回对接邀请",
        "pool_trusted": "设置可信爱心资源（圆梦墙）",
        "wall_town_setting": "圆梦墙：可信爱心资源自动确认的镇街设置",
        "wall_auto_confirm": "圆梦墙：可信爱心资源的认领自动确认",
    },
    "微实事项目": {
        "project_propose": "提出微实事项目",
        "project_visit": "项目：现场踏勘",
        "project_carry": "项目：转入以后的批次",
        "project_approve": "项目：立项",
        "project_objection": "项目：登记公示异议",
        "project_answer": "项目：答复公示异议",
        "project_stage": "项目：登记实施进度",
        "project_accept": "项目：验收",
        "round_vote": "批次：居民投票",
        "round_meeting": "批次：联席会议",
    },
    "村（社区）": {
        "community_add": "添加村（社区）",
        "community_rename": "村（社区）改名",
        "community_toggle": "启用/停用村（社区）",
        "community_poster": "下载村（社区）二维码海报",
    },
    "统计与公告": {
        "stats_export": "导出统计表",
        "league_export": "导出镇街排名",
        "archive_export": "导出档案",
        "notice_publish": "发布公告",
        "notice_edit": "修改公告",
        "notice_delete": "删除公告",
    },
    "系统管理": {
        "admin_create_staff": "新建工作人员账号",
        **{f"admin_staff_{op}": f"账号管理：{label}" for op, label in _ADMIN_STAFF_OPS.items()},
        **{f"admin_category_{op}": f"类别管理：{label}" for op, label in _ADMIN_CATEGORY_OPS.items()},
        "admin_sla_policy": "修改办理时限",
        "admin_sla_restore": "恢复默认时限",
        "api_call": "开放接口调用",
        "api_key_create": "新建开放接口密钥",
        "api_key_revoke": "吊销开放接口密钥",
        "api_callback_replay": "重发开放接口回调",
    },
}
ACTION_LABELS: dict[str, str] = {
    code: label for group in ACTION_GROUPS.values() for code, label in group.items()
}


def action_label(code: str) -> str:
    """The Chinese label of an audit action code; a code this table does not know yet reads "其他操作"."""
    return ACTION_LABELS.get(code, "其他操作")


class AuditError(Exception):
    """The reader may not see the audit log (a message staff can read)."""


@dataclass(frozen=True, slots=True)
class AuditFilter:
    action: str | None = None
    staff_id: int | None = None
    town: str | None = None  # city roles only; a town supervisor is always held to their own town
    start: datetime | None = None  # half-open [start, end), aware UTC
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    action: str
    label: str
    staff: str
    case_no: str | None
    detail: str
    ip: str | None


@dataclass(frozen=True, slots=True)
class AuditPage:
    rows: list[AuditEntry]
    has_next: bool


def _town_of(viewer: Staff, wanted: str | None) -> str | None:
    if viewer.role not in SUPERVISORS:
        raise AuditError("只有负责人可以查看操作日志")
    if viewer.role in CITY_ROLES:
        return wanted
    return viewer.town or "\x00"  # a town account without a town sees nothing rather than everything


async def audit_staff(session: AsyncSession, *, viewer: Staff) -> list[tuple[int, str]]:
    """The staff members the reader may filter by: their town's, or everyone for city roles."""
    town = _town_of(viewer, None)
    q = sa_select(col(Staff.id), col(Staff.display_name), col(Staff.username)).order_by(col(Staff.username))
    if town is not None:
        q = q.where(col(Staff.town) == town)
    rows = await session.exec(q)  # type: ignore[call-overload]
    return [(int(i), name or user) for i, name, user in rows]


async def audit_log(
    session: AsyncSession, *, viewer: Staff, filters: AuditFilter, page: int = 1, per_page: int = 50
) -> AuditPage:
    """One page of the audit log, newest first, within the reader's jurisdiction and the filters."""
    town = _town_of(viewer, filters.town)
    q = (
        sa_select(AuditLog, col(Staff.display_name), col(Staff.username), col(Case.case_no))
        .join(Staff, col(Staff.id) == col(AuditLog.staff_id), isouter=True)
        .join(Case, col(Case.id) == col(AuditLog.case_id), isouter=True)
    )
    if town is not None:
        q = q.where(col(Staff.town) == town)
    if filters.action is not None:
        q = q.where(col(AuditLog.action) == filters.action)
    if filters.staff_id is not None:
        q = q.where(col(AuditLog.staff_id) == filters.staff_id)
    if filters.start is not None:
        q = q.where(col(AuditLog.at) >= filters.start)
    if filters.end is not None:
        q = q.where(col(AuditLog.at) < filters.end)
    q = (
        q.order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc())
        .offset((page - 1) * per_page)
        .limit(per_page + 1)
    )
    rows = list(await session.exec(q))  # type: ignore[call-overload]
    entries = [
        AuditEntry(
            at=log.at,
            action=log.action,
            label=action_label(log.action),
            staff=name or user or "系统",
            case_no=case_no,
            detail=mask_text(log.detail or ""),
            ip=log.ip,
        )
        for log, name, user, case_no in rows[:per_page]
    ]
    return AuditPage(entries, len(rows) > per_page)
