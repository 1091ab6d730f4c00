"""The words the database stores, as ``StrEnum``s with their Chinese labels next to them: case statuses, kinds,
intake channels, staff roles, actor types, timeline event kinds, case flags, offer and survey statuses, outbox
statuses, message kinds and delivery channels.

They are stored in the same VARCHAR columns as before (a ``StrEnum`` member *is* its string: it compares equal to
it, hashes like it and is bound to SQL as it), so rows written before and code that still writes plain strings keep
working. This module sits beside ``bot.models``, below every package, so all of them may import it.
"""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    SUBMITTED = "submitted"
    VERIFIED = "verified"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CLAIMED = "claimed"
    MATCHING = "matching"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    REOPENED = "reopened"
    MERGED = "merged"
    POLICY = "policy"  # routed to a government policy: the department decides

    @property
    def label(self) -> str:
        return CASE_STATUS_LABEL[self]


#: a case done for the resident (what a satisfaction score rates): completed, or closed after completion
DONE: tuple[str, ...] = (CaseStatus.COMPLETED, CaseStatus.CLOSED)


CASE_STATUS_LABEL: dict[str, str] = {
    CaseStatus.SUBMITTED: "已提交",
    CaseStatus.VERIFIED: "社区已核实",
    CaseStatus.ACCEPTED: "已受理",
    CaseStatus.REJECTED: "不予受理",
    CaseStatus.CLAIMED: "已认领",
    CaseStatus.MATCHING: "对接爱心资源中",
    CaseStatus.DISPATCHED: "已派单",
    CaseStatus.IN_PROGRESS: "办理中",
    CaseStatus.COMPLETED: "已办结",
    CaseStatus.CLOSED: "已归档",
    CaseStatus.CANCELLED: "已撤销",
    CaseStatus.REOPENED: "已重新打开",
    CaseStatus.MERGED: "已合并",
    CaseStatus.POLICY: "政策办理中",
}


class CaseKind(StrEnum):
    MICRO_WISH = "micro_wish"
    MICRO_PROJECT = "micro_project"

    @property
    def label(self) -> str:
        return CASE_KIND_LABEL[self]


CASE_KIND_LABEL: dict[str, str] = {CaseKind.MICRO_WISH: "微心愿", CaseKind.MICRO_PROJECT: "微实事"}


class CaseChannel(StrEnum):
    """Where a case came in."""

    WECHAT = "wechat"
    QRCODE = "qrcode"  # WeChat, after scanning a community's QR code
    HOTLINE_12345 = "hotline_12345"
    WINDOW = "window"
    STAFF = "staff"

    @property
    def label(self) -> str:
        return CASE_CHANNEL_LABEL[self]


CASE_CHANNEL_LABEL: dict[str, str] = {
    CaseChannel.WECHAT: "微信公众号",
    CaseChannel.QRCODE: "社区二维码",
    CaseChannel.HOTLINE_12345: "12345热线",
    CaseChannel.WINDOW: "服务窗口",
    CaseChannel.STAFF: "工作人员代录",
}


class Role(StrEnum):
    """Staff roles (residents, volunteers and the system are actor types, not roles)."""

    COMMUNITY_WORKER = "community_worker"
    TOWN_STAFF = "town_staff"
    TOWN_SUPERVISOR = "town_supervisor"
    CITY_SUPERVISOR = "city_supervisor"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return ROLE_LABEL[self]


ROLE_LABEL: dict[str, str] = {
    Role.COMMUNITY_WORKER: "村（社区）干部",
    Role.TOWN_STAFF: "镇街工作人员",
    Role.TOWN_SUPERVISOR: "镇街负责人",
    Role.CITY_SUPERVISOR: "市级督办",
    Role.ADMIN: "系统管理员",
}


class ActorType(StrEnum):
    STAFF = "staff"
    RESIDENT = "resident"
    SYSTEM = "system"
    VOLUNTEER = "volunteer"
    API = "api"

    @property
    def label(self) -> str:
        return ACTOR_TYPE_LABEL[self]


ACTOR_TYPE_LABEL: dict[str, str] = {
    ActorType.STAFF: "工作人员",
    ActorType.RESIDENT: "居民",
    ActorType.SYSTEM: "系统",
    ActorType.VOLUNTEER: "爱心人士",
    ActorType.API: "对接系统",
}


class EventKind(StrEnum):
    """Kinds of timeline events (CaseEvent.kind)."""

    TRANSITION = "transition"
    NOTE = "note"
    MESSAGE = "message"
    EDIT = "edit"
    QUESTION = "question"
    ANSWER = "answer"
    PHOTO = "photo"
    OFFER = "offer"
    REASSIGN = "reassign"
    SUPERVISION = "supervision"  # 督办: the city presses a case, and the town's answer

    @property
    def label(self) -> str:
        return EVENT_KIND_LABEL[self]


EVENT_KIND_LABEL: dict[str, str] = {
    EventKind.TRANSITION: "状态变更",
    EventKind.NOTE: "备注",
    EventKind.MESSAGE: "消息",
    EventKind.EDIT: "修改",
    EventKind.QUESTION: "询问居民",
    EventKind.ANSWER: "居民答复",
    EventKind.PHOTO: "照片",
    EventKind.OFFER: "邀请认领",
    EventKind.REASSIGN: "改派",
    EventKind.SUPERVISION: "督办",
}


class CaseFlag(StrEnum):
    """What a case still asks of staff by hand."""

    PHONE_NEEDED = "phone_needed"
    LOW_SCORE = "low_score"
    MATCH_EXHAUSTED = "match_exhausted"

    @property
    def label(self) -> str:
        return CASE_FLAG_LABEL[self]


CASE_FLAG_LABEL: dict[str, str] = {
    CaseFlag.PHONE_NEEDED: "请电话联系居民",
    CaseFlag.LOW_SCORE: "低分回访",
    CaseFlag.MATCH_EXHAUSTED: "无人认领，需人工处理",
}


class OfferStatus(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TIMEOUT = "timeout"
    WITHDRAWN = "withdrawn"
    DELIVERED = "delivered"
    DONE = "done"

    @property
    def label(self) -> str:
        return OFFER_STATUS_LABEL[self]


OFFER_STATUS_LABEL: dict[str, str] = {
    OfferStatus.OFFERED: "待答复",
    OfferStatus.ACCEPTED: "已接受",
    OfferStatus.DECLINED: "已婉拒",
    OfferStatus.TIMEOUT: "超时未答复",
    OfferStatus.WITHDRAWN: "已撤回",
    OfferStatus.DELIVERED: "已送达",
    OfferStatus.DONE: "已完成",
}


class SurveyStatus(StrEnum):
    SENT = "sent"
    ANSWERED = "answered"
    EXPIRED = "expired"

    @property
    def label(self) -> str:
        return SURVEY_STATUS_LABEL[self]


SURVEY_STATUS_LABEL: dict[str, str] = {
    SurveyStatus.SENT: "待评价",
    SurveyStatus.ANSWERED: "已评价",
    SurveyStatus.EXPIRED: "超时未评价",
}


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNREACHABLE = "unreachable"

    @property
    def label(self) -> str:
        return OUTBOX_STATUS_LABEL[self]


OUTBOX_STATUS_LABEL: dict[str, str] = {
    OutboxStatus.PENDING: "待发送",
    OutboxStatus.SENDING: "发送中",
    OutboxStatus.SENT: "已发送",
    OutboxStatus.FAILED: "发送失败",
    OutboxStatus.UNREACHABLE: "无法送达",
}


class MessageKind(StrEnum):
    """Kinds of outbox messages (Outbox.kind); the label is the template message's title."""

    REPLY = "reply"
    PROGRESS = "progress"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    OFFER = "offer"
    SURVEY = "survey"
    DIGEST = "digest"
    ALERT = "alert"

    @property
    def label(self) -> str:
        return MESSAGE_KIND_LABEL[self]


MESSAGE_KIND_LABEL: dict[str, str] = {
    MessageKind.REPLY: "咨询回复",
    MessageKind.PROGRESS: "办理进度",
    MessageKind.REMINDER: "办理提醒",
    MessageKind.ESCALATION: "超时督办",
    MessageKind.OFFER: "认领邀请",
    MessageKind.SURVEY: "满意度评价",
    MessageKind.DIGEST: "每日待办",
    MessageKind.ALERT: "重要提醒",
}


class DeliveryChannel(StrEnum):
    """How an outbox row went out (Outbox.channel)."""

    CUSTOM = "custom"
    TEMPLATE = "template"

    @property
    def label(self) -> str:
        return DELIVERY_CHANNEL_LABEL[self]


DELIVERY_CHANNEL_LABEL: dict[str, str] = {
    DeliveryChannel.CUSTOM: "客服消息",
    DeliveryChannel.TEMPLATE: "模板消息",
}
