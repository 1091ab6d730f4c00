"""Policy first (政策优先): the catalogue of livelihood policies, the suggestions for a wish, and routing a case to a
policy (``route_to_policy``), with the department's answer (``record_outcome``: granted → the case is done;
refused → back to matching donors).

A wish a policy covers should not wait for a donor: the case page shows the policies that may cover it (by
category, item, beneficiary and words) and staff route it with one form. The routing is a transition of the table
(``route_policy``, to ``policy``) with its own deadline (the SLA stage ``policy``); the department, the policy and
what was applied for are kept on a ``PolicyReferral`` row, and the resident hears in plain words what was done."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actors import Actor
from bot.cases.table import LifecycleError, TransitionError
from bot.cases.transition import notify_resident, transition
from bot.models import Case, PolicyReferral, WelfarePolicy
from bot.states import CaseKind, CaseStatus

# ------------------------------------------------------------------ the starter catalogue (a Guangdong city)
# code, name, department, categories, keywords, who qualifies, what it gives, how to apply, documents
STARTER: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...], str, str, str, str], ...] = (
    (
        "dibao",
        "最低生活保障",
        "镇街社会事务局（民政）",
        ("生活物资", "助老", "助残", "其他"),
        ("低保", "没收入", "生活困难", "吃饭", "交不起", "米", "油"),
        "本市户籍，家庭人均月收入低于本市低保标准，且家庭财产符合规定的家庭。",
        "按月发放低保金（补足到本市低保标准），并可同时享受医疗、教育、住房等专项救助。",
        "到户籍所在村（社区）或镇街社会事务局提出申请，也可在“粤省事”上申请；经入户调查、公示后审批。",
        "身份证、户口簿、家庭成员收入和财产情况说明、授权核对家庭经济状况的书面同意。",
    ),
    (
        "tekun",
        "特困人员救助供养",
        "镇街社会事务局（民政）",
        ("助老", "助残", "生活物资"),
        ("孤寡", "独居", "五保", "无儿无女", "没人照顾", "特困"),
        "无劳动能力、无生活来源、无法定赡养扶养义务人（或其无履行能力）的老年人、残疾人和未成年人。",
        "基本生活费和照料护理费；可选择在家分散供养或到敬老院集中供养，并保障看病、住房和丧葬。",
        "本人或委托村（社区）向户籍所在镇街提出申请，经调查核实、公示后审批。",
        "身份证、户口簿、残疾证或医院证明（如有）、收入和财产情况说明。",
    ),
    (
        "linshi",
        "临时救助",
        "镇街社会事务局（民政）",
        ("生活物资", "助医", "其他", "助老", "助学"),
        ("突然", "急", "火灾", "意外", "生病", "住院", "临时", "被褥", "家电", "冰箱"),
        "因突发事件、意外伤害、重大疾病等原因导致基本生活暂时出现严重困难的家庭或个人（含非本市户籍）。",
        "一次性发放救助金或实物（如生活用品、被褥、家电），情况紧急的可先行救助、后补手续。",
        "向所在村（社区）或镇街社会事务局申请；紧急情况可直接到镇街当场办理。",
        "身份证、困难情况说明，以及医疗票据、事故证明等能说明困难原因的材料。",
    ),
    (
        "fuju",
        "残疾人辅助器具适配",
        "镇街残联",
        ("助残", "助老"),
        ("轮椅", "拐杖", "助行器", "助听器", "假肢", "坐便椅", "残疾", "走不了路", "行动不便"),
        "持有第二代残疾人证的本市残疾人（部分器具对行动不便的老年人也可申请适配）。",
        "免费或补贴适配轮椅、助行器、助听器、坐便椅等基本型辅助器具，上门评估和指导使用。",
        "向村（社区）残疾人专职委员或镇街残联提出申请，评估后按需适配。",
        "残疾人证、身份证、户口簿，需评估的附医院诊断证明。",
    ),
    (
        "liangxiang",
        "困难残疾人生活补贴和重度残疾人护理补贴（两项补贴）",
        "镇街残联",
        ("助残",),
        ("残疾", "护理", "瘫痪", "卧床", "重度", "残疾证"),
        "低保家庭等困难家庭中的残疾人（生活补贴），残疾等级为一、二级且需长期照护的重度残疾人（护理补贴）。",
        "按月发放生活补贴、护理补贴，直接打到本人账户。",
        "本人或监护人向户籍所在村（社区）或镇街残联申请，也可在“粤省事”上申请。",
        "残疾人证、身份证、户口簿、银行账户，困难家庭的相关证明。",
    ),
    (
        "xuesheng",
        "学生资助",
        "市教育局（学校资助中心）",
        ("助学",),
        ("学费", "书包", "上学", "读书", "学生", "文具", "电脑", "校服", "生活费"),
        "家庭经济困难的在校学生，优先低保、特困、孤儿、残疾学生和残疾人子女。",
        "减免学费、国家助学金、生活补助；义务教育阶段免费提供教科书。",
        "每学期开学时向就读学校提出申请，由学校认定家庭经济困难后发放。",
        "学生证或在读证明、家庭经济困难情况说明，低保证、残疾证等（如有）。",
    ),
    (
        "jineng",
        "职业技能培训补贴",
        "市人力资源和社会保障局",
        ("就业帮扶",),
        ("培训", "学技术", "技能", "证书", "学手艺", "厨师", "电工"),
        "在本市参加补贴目录内职业技能培训并取得证书的劳动者，就业困难人员、脱贫人口等有额外补贴。",
        "按取得的证书等级给予培训补贴，困难人员培训期间还可领取生活费补贴。",
        "在定点培训机构报名，取得证书后在“广东人社”或镇街人社分局申请补贴。",
        "身份证、职业资格或技能等级证书、银行账户。",
    ),
    (
        "jiuye",
        "就业援助",
        "镇街人社分局（公共就业服务）",
        ("就业帮扶",),
        ("找工作", "失业", "没工作", "就业", "上班", "岗位"),
        "登记失业人员中的就业困难人员，如大龄、残疾、低保家庭成员、长期失业人员。",
        "一对一就业指导、岗位推荐、公益性岗位安置，以及社保补贴和岗位补贴。",
        "到镇街人社分局或村（社区）公共就业服务站办理失业登记和就业困难人员认定。",
        "身份证、户口簿或居住证、就业失业登记证明、困难情况证明。",
    ),
    (
        "yiliao",
        "医疗救助",
        "市医疗保障局（镇街医保服务窗口）",
        ("助医",),
        ("看病", "住院", "医药费", "药", "手术", "治病", "医疗"),
        "低保对象、特困人员、低保边缘家庭成员，以及因病致贫的重病患者。",
        "资助参加医保，对医保报销后个人负担的合规医疗费用按比例再报销。",
        "救助对象在定点医院出院结算时直接减免；因病致贫的向镇街医保窗口申请。",
        "身份证、医保卡、住院病历和费用清单、困难情况证明。",
    ),
    (
        "shilaohua",
        "老旧小区和困难老人家庭适老化改造",
        "市住房和城乡建设局（镇街规划建设部门）",
        ("助老", "助残"),
        ("扶手", "防滑", "卫生间", "楼梯", "电梯", "摔倒", "适老", "改造"),
        "纳入老旧小区改造计划的小区，以及经评估需要居家适老化改造的特殊困难老年人家庭。",
        "公共部分加装扶手、无障碍坡道、照明等；困难老人家中改造卫生间、加装扶手和防滑地面。",
        "小区由业主或村（社区）向镇街申报；困难老人家庭向村（社区）提出，评估后纳入改造名单。",
        "身份证、房屋产权或居住证明、老人年龄和困难情况证明。",
    ),
)


def starter_rows() -> list[dict[str, object]]:
    """The starter catalogue as table rows (the migration seeds them; admins edit them afterwards)."""
    keys = ("code", "name", "department", "categories", "keywords", "qualifies", "gives", "how_to_apply")
    rows = []
    for entry in STARTER:
        row: dict[str, object] = dict(zip(keys, entry[:8], strict=True))
        row["documents"] = entry[8]
        row["categories"] = list(entry[3])
        row["keywords"] = list(entry[4])
        rows.append(row)
    return rows


# ------------------------------------------------------------------ the catalogue
class PolicyError(LifecycleError):
    """A catalogue edit or a routing that cannot be done, with a message staff can read."""


POLICY_FIELDS: dict[str, tuple[str, int]] = {  # field -> (label, max length)
    "name": ("政策名称", 64),
    "department": ("主管部门", 64),
    "qualifies": ("适用对象", 1000),
    "gives": ("保障内容", 1000),
    "how_to_apply": ("申请方式", 1000),
    "documents": ("所需材料", 1000),
}


async def list_policies(session: AsyncSession, *, active_only: bool = False) -> list[WelfarePolicy]:
    stmt = select(WelfarePolicy).order_by(col(WelfarePolicy.id))
    if active_only:
        stmt = stmt.where(col(WelfarePolicy.active).is_(True))
    return list((await session.exec(stmt)).all())


def _words(text: str) -> list[str]:
    return [w for w in (p.strip() for p in text.replace("，", ",").replace("、", ",").split(",")) if w][:30]


async def save_policy(
    session: AsyncSession,
    *,
    policy_id: int | None,
    values: dict[str, str],
    categories: list[str],
    keywords: str,
    active: bool,
    now: datetime,
) -> WelfarePolicy:
    """Create or edit a catalogue entry; raises PolicyError naming the first missing or too long field."""
    clean: dict[str, str] = {}
    for name, (label, limit) in POLICY_FIELDS.items():
        value = (values.get(name) or "").strip()
        if not value:
            raise PolicyError(f"请填写{label}")
        if len(value) > limit:
            raise PolicyError(f"{label}太长（最多{limit}字）")
        clean[name] = value
    if policy_id is None:
        row = WelfarePolicy(code=f"p{int(now.timestamp())}", name="", department="")
        for name, value in clean.items():
            setattr(row, name, value)
        session.add(row)
        await session.flush()
        row.code = f"p{row.id}"
    else:
        found = await session.get(WelfarePolicy, policy_id)
        if found is None:
            raise PolicyError("没有这项政策")
        row = found
        for name, value in clean.items():
            setattr(row, name, value)
    row.categories = [c for c in categories if c][:10]
    row.keywords = _words(keywords)
    row.active = active
    row.updated_at = now
    session.add(row)
    await session.flush()
    return row


# ------------------------------------------------------------------ suggestions
@dataclass(slots=True)
class Suggestion:
    policy: WelfarePolicy
    score: int
    reasons: list[str] = field(default_factory=list)


def suggest(case: Case, policies: list[WelfarePolicy], *, limit: int = 3) -> list[Suggestion]:
    """The policies that may cover this wish, best first, each with the reasons (category, the words found)."""
    if case.kind != CaseKind.MICRO_WISH:
        return []
    text = " ".join(x for x in (case.description, case.item or "", case.beneficiary or "") if x)
    out = []
    for p in policies:
        if not p.active:
            continue
        score, reasons = 0, []
        if case.category and case.category in p.categories:
            score += 2
            reasons.append(f"类别「{case.category}」")
        found = [w for w in p.keywords if w and w in text]
        if found:
            score += 3 * len(found)
            reasons.append("提到「" + "」「".join(found[:4]) + "」")
        if found:  # a category alone is too weak a hint: every 助老 wish would list half the catalogue
            out.append(Suggestion(p, score, reasons))
    out.sort(key=lambda s: (-s.score, s.policy.id or 0))
    return out[:limit]


# ------------------------------------------------------------------ routing and the outcome
async def open_referral(session: AsyncSession, *, case_id: int | None) -> PolicyReferral | None:
    row = await session.exec(
        select(PolicyReferral)
        .where(PolicyReferral.case_id == case_id, PolicyReferral.outcome == "pending")
        .order_by(col(PolicyReferral.id).desc())
    )
    return row.first()


async def referrals_of(session: AsyncSession, *, case_id: int | None) -> list[PolicyReferral]:
    rows = await session.exec(
        select(PolicyReferral).where(PolicyReferral.case_id == case_id).order_by(col(PolicyReferral.id))
    )
    return list(rows.all())


async def route_to_policy(
    session: AsyncSession,
    *,
    case: Case,
    policy_id: int,
    applied_for: str,
    actor: Actor,
    now: datetime,
    request_key: str | None = None,
) -> PolicyReferral:
    """Route the case to a policy: the transition (with its own deadline), the referral row and the resident's
    message saying which department handles what, in one transaction."""
    policy = await session.get(WelfarePolicy, policy_id)
    if policy is None or not policy.active:
        raise PolicyError("请选择一项有效的政策")
    applied_for = applied_for.strip()
    if not applied_for:
        raise PolicyError("请写明为居民申请了什么")
    if len(applied_for) > 200:
        raise PolicyError("申请内容太长（最多200字）")
    event = await transition(
        session,
        case=case,
        action="route_policy",
        actor=actor,
        note=f"{policy.name}：{applied_for}",
        now=now,
        request_key=request_key,
        data={"policy_id": policy.id, "department": policy.department},
        _set={},
    )
    existing = await open_referral(session, case_id=case.id)
    if existing is not None:  # a retried request: the first one's referral
        return existing
    referral = PolicyReferral(
        case_id=case.id or 0,
        policy_id=policy.id,
        policy_name=policy.name,
        department=policy.department,
        applied_for=applied_for,
        deadline=case.stage_deadline,
        created_by_id=actor.id,
        created_at=now,
    )
    session.add(referral)
    await session.flush()
    await notify_resident(
        session,
        case=case,
        text=(
            f"您的微心愿（编号{case.case_no}）符合「{policy.name}」的条件，我们已帮您向{policy.department}"
            f"申请：{applied_for.rstrip('。')}。有结果会第一时间告诉您。"
        ),
        dedupe_key=f"case:{case.id}:ev:{request_key or event.id}",
        now=now,
    )
    return referral


async def record_outcome(
    session: AsyncSession,
    *,
    case: Case,
    granted: bool,
    note: str,
    actor: Actor,
    now: datetime,
    request_key: str | None = None,
) -> PolicyReferral:
    """The department's answer: granted → the case is completed (and counted as covered by a policy);
    refused → back to matching donors. The transition tells the resident."""
    if case.status != CaseStatus.POLICY:
        raise TransitionError("这件诉求没有在等政策办理结果")
    referral = await open_referral(session, case_id=case.id)
    if referral is None:
        raise PolicyError("没有找到这件诉求的政策申请记录")
    note = note.strip()[:200]
    await transition(
        session,
        case=case,
        action="policy_grant" if granted else "policy_refuse",
        actor=actor,
        note=note,
        now=now,
        request_key=request_key,
        data={"policy_id": referral.policy_id, "referral_id": referral.id},
    )
    referral.outcome = "granted" if granted else "refused"
    referral.outcome_note = note
    referral.decided_at = now
    session.add(referral)
    await session.flush()
    return referral
