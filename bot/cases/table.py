"""The lifecycle table: the states with their labels, the actions, the allowed transitions (who may do what,
from which state, for which kind) and the rules that read it (``allowed_actions``, ``in_jurisdiction``,
``refusal_for``), and the domain errors. Data and pure functions only: nothing here touches the database."""

from __future__ import annotations

from dataclasses import dataclass

from bot.cases.actors import CITY_ROLES, SUPERVISORS, TOWN_WORKERS, Actor
from bot.cases.numbering import KIND_LABEL
from bot.models import Case
from bot.states import CASE_STATUS_LABEL, ActorType, CaseKind, CaseStatus, OfferStatus, Role

# ------------------------------------------------------------------ states
STATE_LABEL: dict[str, str] = dict(CASE_STATUS_LABEL)
TERMINAL = frozenset({CaseStatus.REJECTED, CaseStatus.CLOSED, CaseStatus.CANCELLED, CaseStatus.MERGED})
#: the case ended without the help being given: every open offer is withdrawn
CASE_ENDED_UNDONE = frozenset({CaseStatus.REJECTED, CaseStatus.CANCELLED, CaseStatus.MERGED})
#: entering these ends the volunteers' part (offers withdrawn or finished)
OFFERS_END = TERMINAL | {CaseStatus.COMPLETED}
#: offers through which a volunteer can still see or act on the case
OFFER_OPEN = (OfferStatus.OFFERED, OfferStatus.ACCEPTED, OfferStatus.DELIVERED)
OPEN_STATES = frozenset(STATE_LABEL) - TERMINAL - {CaseStatus.COMPLETED}
#: states in which a case has (or may have) an owner doing the work
OWNED_STATES = frozenset(
    {
        CaseStatus.CLAIMED,
        CaseStatus.MATCHING,
        CaseStatus.DISPATCHED,
        CaseStatus.IN_PROGRESS,
        CaseStatus.REOPENED,
    }
)

ACTION_LABEL: dict[str, str] = {
    "verify": "核实",
    "accept": "受理",
    "reject": "不予受理",
    "claim": "认领",
    "assign": "指派",
    "release": "释放",
    "match": "对接爱心资源",
    "dispatch": "派单",
    "start": "开始办理",
    "complete": "办结",
    "close": "归档",
    "cancel": "撤销",
    "reopen": "重新打开",
    "resume": "继续办理",
    "merge": "合并",
}


@dataclass(frozen=True, slots=True)
class Rule:
    to: CaseStatus
    roles: frozenset[str]  # staff roles; "resident", "system", "volunteer" for the other actor types
    reason: bool = False  # a human decides: a reason is required
    message: str | None = None  # what the resident hears ({case_no}, {note}, {kind}); None = internal step
    kinds: frozenset[str] = frozenset({CaseKind.MICRO_WISH, CaseKind.MICRO_PROJECT})
    owner_only: bool = False  # only the owner (or a supervisor) may do it on a claimed case


_STAFF_WORK = TOWN_WORKERS | CITY_ROLES
_MSG_CLAIMED = "您的{kind}诉求（编号{case_no}）已有工作人员专门负责跟进，请耐心等待。"
MSG_STARTED_BY_TOWN = "您的微心愿（编号{case_no}）由镇街工作人员安排办理，正在办理中。"
#: offer statuses that mean a donor said yes
DONOR_SAID_YES = (OfferStatus.ACCEPTED, OfferStatus.DELIVERED, OfferStatus.DONE)

TRANSITIONS: dict[tuple[str, str], Rule] = {
    (CaseStatus.SUBMITTED, "verify"): Rule(
        CaseStatus.VERIFIED,
        frozenset({Role.COMMUNITY_WORKER}) | TOWN_WORKERS,
        message="您的{kind}诉求（编号{case_no}）已经社区核实，正在等待镇街审核。",
    ),
    (CaseStatus.VERIFIED, "accept"): Rule(
        CaseStatus.ACCEPTED, TOWN_WORKERS, message="您的{kind}诉求（编号{case_no}）已受理，我们会尽快安排。"
    ),
    (CaseStatus.SUBMITTED, "reject"): Rule(
        CaseStatus.REJECTED,
        TOWN_WORKERS,
        reason=True,
        message="很抱歉，您的{kind}诉求（编号{case_no}）暂不能受理，原因：{note}。如有疑问可拨打12345咨询。",
    ),
    (CaseStatus.VERIFIED, "reject"): Rule(
        CaseStatus.REJECTED,
        TOWN_WORKERS,
        reason=True,
        message="很抱歉，您的{kind}诉求（编号{case_no}）暂不能受理，原因：{note}。如有疑问可拨打12345咨询。",
    ),
    (CaseStatus.ACCEPTED, "claim"): Rule(CaseStatus.CLAIMED, TOWN_WORKERS, message=_MSG_CLAIMED),
    (CaseStatus.ACCEPTED, "assign"): Rule(CaseStatus.CLAIMED, SUPERVISORS, message=_MSG_CLAIMED),
    (CaseStatus.CLAIMED, "release"): Rule(CaseStatus.ACCEPTED, TOWN_WORKERS | CITY_ROLES, owner_only=True),
    (CaseStatus.REOPENED, "release"): Rule(CaseStatus.ACCEPTED, TOWN_WORKERS | CITY_ROLES, owner_only=True),
    (CaseStatus.CLAIMED, "match"): Rule(
        CaseStatus.MATCHING,
        _STAFF_WORK | {ActorType.SYSTEM},
        owner_only=True,
        kinds=frozenset({CaseKind.MICRO_WISH}),
        message="您的微心愿（编号{case_no}）正在为您联系爱心企业和志愿者，有进展会第一时间告诉您。",
    ),
    (CaseStatus.CLAIMED, "dispatch"): Rule(
        CaseStatus.DISPATCHED,
        _STAFF_WORK,
        owner_only=True,
        kinds=frozenset({CaseKind.MICRO_PROJECT}),
        message="您反映的微实事（编号{case_no}）已派给责任单位处理。",
    ),
    (CaseStatus.MATCHING, "start"): Rule(
        CaseStatus.IN_PROGRESS,
        _STAFF_WORK | {ActorType.SYSTEM, ActorType.VOLUNTEER},
        owner_only=True,
        message="好消息！您的微心愿（编号{case_no}）已有爱心人士认领，正在办理中。",
    ),
    (CaseStatus.DISPATCHED, "start"): Rule(
        CaseStatus.IN_PROGRESS,
        _STAFF_WORK | {ActorType.SYSTEM},
        owner_only=True,
        message="您反映的微实事（编号{case_no}）责任单位已开始办理。",
    ),
    (CaseStatus.IN_PROGRESS, "complete"): Rule(
        CaseStatus.COMPLETED,
        _STAFF_WORK | {ActorType.VOLUNTEER},
        reason=True,
        owner_only=True,
        message="您的{kind}诉求（编号{case_no}）已办结：{note}。稍后请您为这次服务打个分。",
    ),
    (CaseStatus.COMPLETED, "close"): Rule(
        CaseStatus.CLOSED, SUPERVISORS | {Role.TOWN_STAFF, ActorType.SYSTEM}
    ),
    (CaseStatus.COMPLETED, "reopen"): Rule(
        CaseStatus.REOPENED,
        _STAFF_WORK | {ActorType.SYSTEM},
        reason=True,
        message="您的{kind}诉求（编号{case_no}）已重新打开继续处理，原因：{note}。",
    ),
    (CaseStatus.CLOSED, "reopen"): Rule(
        CaseStatus.REOPENED,
        SUPERVISORS | {ActorType.SYSTEM},
        reason=True,
        message="您的{kind}诉求（编号{case_no}）已重新打开继续处理，原因：{note}。",
    ),
    (CaseStatus.REOPENED, "resume"): Rule(CaseStatus.IN_PROGRESS, _STAFF_WORK, owner_only=True),
}
_CANCELLABLE = (
    CaseStatus.SUBMITTED,
    CaseStatus.VERIFIED,
    CaseStatus.ACCEPTED,
    CaseStatus.CLAIMED,
    CaseStatus.MATCHING,
    CaseStatus.DISPATCHED,
    CaseStatus.IN_PROGRESS,
    CaseStatus.REOPENED,
)
for _state in _CANCELLABLE:
    TRANSITIONS[(_state, "cancel")] = Rule(
        CaseStatus.CANCELLED,
        TOWN_WORKERS | {ActorType.RESIDENT},
        reason=True,
        message="您的{kind}诉求（编号{case_no}）已撤销。{note_line}",
    )
    TRANSITIONS[(_state, "merge")] = Rule(
        CaseStatus.MERGED,
        TOWN_WORKERS | CITY_ROLES,
        reason=True,
        message="您的{kind}诉求（编号{case_no}）与同类诉求合并处理，{note}。",
    )

#: actions that `transition()` refuses because they need their own function (extra data)
SPECIAL_ACTIONS = frozenset({"merge", "assign"})


# ------------------------------------------------------------------ errors
class LifecycleError(Exception):
    """A domain error with a message staff or residents can read."""


class TransitionError(LifecycleError):
    pass


class ClaimConflict(LifecycleError):
    def __init__(self, owner_id: int | None, owner_name: str) -> None:
        super().__init__(f"该诉求已由{owner_name}认领")
        self.owner_id = owner_id
        self.owner_name = owner_name


class BindError(LifecycleError):
    pass


# ------------------------------------------------------------------ queries about the table
def allowed_actions(case: Case, actor: Actor) -> list[str]:
    """The transitions this actor may perform on this case now (for the buttons on the case page)."""
    out: list[str] = []
    for (state, action), rule in TRANSITIONS.items():
        if state != case.status:
            continue
        if refusal_for(case, actor, action, rule) is None:
            out.append(action)
    return out


def in_jurisdiction(case: Case, actor: Actor) -> bool:
    if actor.type in (ActorType.SYSTEM, ActorType.VOLUNTEER):
        return True
    if actor.type == ActorType.RESIDENT:
        return case.resident_id is not None and case.resident_id == actor.id
    if actor.role in CITY_ROLES:
        return True
    if actor.town != case.town:
        return False
    if actor.role == Role.COMMUNITY_WORKER:
        return actor.community_id is not None and actor.community_id == case.community_id
    return True


def refusal_for(case: Case, actor: Actor, action: str, rule: Rule) -> str | None:
    if actor.role_key not in rule.roles:
        return f"您的身份不能对诉求执行「{ACTION_LABEL.get(action, action)}」"
    if case.kind not in rule.kinds:
        return f"{KIND_LABEL.get(case.kind, case.kind)}不能执行「{ACTION_LABEL.get(action, action)}」"
    if not in_jurisdiction(case, actor):
        return "这不是您辖区的诉求"
    if (
        rule.owner_only
        and actor.type == ActorType.STAFF
        and case.claimed_by_id is not None
        and case.claimed_by_id != actor.id
        and actor.role not in SUPERVISORS
    ):
        return "该诉求由其他工作人员负责，只有负责人或镇街负责人可以操作"
    return None


# ------------------------------------------------------------------ the government's side
# Policy first (bot.cases.policies): a wish is routed to a livelihood policy; the department grants it (the case is
# done) or refuses it (back to matching donors). Help given directly (bot.cases.funds): the town or the charity fund
# pays for the wish. Routing and direct help need their data (the policy, the amount), so they are special actions;
# their functions tell the resident in their own words what was done and by whom.
_WISH = frozenset({CaseKind.MICRO_WISH})
ACTION_LABEL.update(
    {
        "route_policy": "转政策办理",
        "policy_grant": "政策已落实",
        "policy_refuse": "政策未获批",
        "fund": "镇街/慈善会直接帮扶",
    }
)
for _state in (CaseStatus.CLAIMED, CaseStatus.MATCHING):
    TRANSITIONS[(_state, "route_policy")] = Rule(CaseStatus.POLICY, _STAFF_WORK, owner_only=True, kinds=_WISH)
    # the town's money is the town's decision: the city presses (督办) but does not spend it
    TRANSITIONS[(_state, "fund")] = Rule(CaseStatus.IN_PROGRESS, TOWN_WORKERS, owner_only=True, kinds=_WISH)
TRANSITIONS[(CaseStatus.POLICY, "policy_grant")] = Rule(
    CaseStatus.COMPLETED,
    _STAFF_WORK,
    reason=True,
    owner_only=True,
    kinds=_WISH,
    message="好消息！您的微心愿（编号{case_no}）已通过政府政策帮您解决：{note}。稍后请您为这次服务打个分。",
)
TRANSITIONS[(CaseStatus.POLICY, "policy_refuse")] = Rule(
    CaseStatus.MATCHING,
    _STAFF_WORK,
    reason=True,
    owner_only=True,
    kinds=_WISH,
    message="您的微心愿（编号{case_no}）申请的政策这次没有获批（{note}）。我们继续为您联系爱心企业和志愿者。",
)
TRANSITIONS[(CaseStatus.POLICY, "cancel")] = TRANSITIONS[(CaseStatus.CLAIMED, "cancel")]
TRANSITIONS[(CaseStatus.POLICY, "merge")] = TRANSITIONS[(CaseStatus.CLAIMED, "merge")]
OWNED_STATES = OWNED_STATES | {CaseStatus.POLICY}
SPECIAL_ACTIONS = SPECIAL_ACTIONS | {"route_policy", "fund"}
