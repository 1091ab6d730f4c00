"""Keyword and regex rules: the degraded mode when Rasa is unreachable, and a fast stand-in for dialogue unit tests.

Deliberately simple and predictable; a rule hit gives a modest confidence so the dialogue still confirms.
"""

from __future__ import annotations

import re

from bot.conversation.nlu import normalize
from bot.conversation.nlu.fillers import strip_fillers
from bot.conversation.nlu.postprocess import finalize_entities
from bot.conversation.nlu.types import Entity, Parse
from reference.privacy import normalize_phone

# (intent, pattern, confidence) — checked in order; the first hit wins.
_RULES: tuple[tuple[str, str, float], ...] = (
    (
        "cancel_request",
        r"取消|撤销|撤回|唔要|不要了|不用了.*(申请|心愿|诉求|单)|不需要了|作废|删除.*(申请|诉求)|"
        r"不(想|再)?申请了?(?!.*(吗|么|？|\?))|唔(想)?申请",
        0.7,
    ),
    (
        "query_progress",
        r"进度|查询|查一下|查下|办到|怎么样了|点样了|处理了没|处理好没|有没有人(处理|理)|"
        r"到哪一步|批了没|什么时候(能|可以)?(到|好|修)|几时|有冇消息|有消息没|结果",
        0.7,
    ),
    ("offer_help", r"志愿者|义工|做义工|捐|认领|爱心企业|想帮|帮帮他们|资助|献爱心|出一份力|赞助|圆梦", 0.7),
    (
        "out_of_scope",
        r"社保|医保卡|公积金|居住证|户口|身份证|驾照|违章|罚单|天气|下雨|(?<!两)(?<!一)台风(?!扇)|噪音|吵|装修|工地|施工|"
        r"旅游|景点|酒店|餐厅|饭店|好吃|外卖|快递|买|股票|房价|租房|彩票|笑话|唱歌|讲个|你是谁|几岁|"
        r"结婚|学车|打疫苗|核酸|车牌|摇号|签证|护照|航班|高铁|地铁",
        0.65,
    ),
    (
        "micro_project",
        r"路灯|灯坏|灯不亮|好黑|太黑|坑|扶手|减速带|斑马线|井盖|下水道|排水|积水|水浸|堵|臭|"
        r"垃圾|护栏|长椅|凳|健身器材|篮球|球场|活动室|阅读角|坡道|路面|台阶|巷|村口|小区|公园|社区里|凉亭|雨棚",
        0.6,
    ),
    (
        "micro_wish",
        r"想要|需要|申请|缺|买不起|没钱|冇钱|困难|帮我|帮忙|心愿|轮椅|助听器|拐杖|书包|电脑|大米|"
        r"米|油|被子|冬衣|风扇|冰箱|洗衣机|辅导|补习|陪|康复|治疗|工作|低保|残疾",
        0.6,
    ),
    (
        "rate_service",
        r"满意|评价|打分|评分|服务.*(好|差|慢)|态度|表扬|投诉.*(工作人员|社工)|谢谢.*(帮|修|送)|"
        r"多谢|感谢|好评|差评|点赞",
        0.65,
    ),
    (
        "ask_help",
        r"是什么|干什么|做什么|能做|可以做|怎么申请|点样申请|如何申请|怎么用|怎样用|帮助|功能|介绍|"
        r"流程|条件|微心愿|微实事|大莞家|菜单|\?|？",
        0.6,
    ),
    ("greet", r"^(你好|您好|hi|hello|哈喽|喂|在吗|在不在|早上好|早晨|早安|下午好|晚上好|嗨|有人吗)", 0.8),
    ("deny", r"^(不|否|没有|不是|不对|不用|不要|错了|唔系|唔使|唔好|no)", 0.75),
    ("affirm", r"^(是|对|好|嗯|确认|确定|可以|行|没错|没问题|ok|好的|系|系啊|得|冇问题|要)", 0.75),
)


#: a question about how to ask for the programme's help (no need named)
_SERVICE_QUESTION = re.compile(
    r"(怎么|怎样|如何|点样|点)申请|申请.{0,6}(条件|流程|手续|材料|要什么|需要什么|要咩)|"
    r"(微心愿|微实事|大莞家)(是什么|是啥|系咩|系乜|指什么)"
)


class KeywordNLU:
    """No network; good enough for the degraded mode and for unit tests of the dialogue."""

    async def parse(self, text: str) -> Parse:
        return parse_keywords(text)

    async def ready(self) -> bool:
        return True


def parse_keywords(text: str) -> Parse:
    cleaned = strip_fillers(text) or (text or "").strip()
    lowered = cleaned.lower()
    raw: list[Entity] = []
    for item in normalize.find_items(cleaned, loose=True)[
        :1
    ]:  # the first thing named; the model finds several
        raw.append(Entity("item", item, item, None, None))
    beneficiary = normalize.find_beneficiary(cleaned)
    if beneficiary:
        raw.append(Entity("beneficiary", beneficiary, beneficiary, None, None))
    without_numbers = re.sub(r"[+\d][\d\s\-]{6,}\d|MS\d{8}-?\d{4,6}", " ", cleaned, flags=re.IGNORECASE)
    quantity = normalize.parse_quantity(without_numbers)
    if quantity is not None and not re.fullmatch(r"\s*\d+\s*", cleaned):
        raw.append(Entity("quantity", str(quantity), str(quantity), None, None))
    entities = finalize_entities(cleaned, raw)

    intent, confidence = _classify(cleaned, lowered)
    if intent == "out_of_scope" and not cleaned:
        confidence = 0.0
    return Parse(
        text=text,
        intent=intent,
        confidence=confidence,
        entities=entities,
        source="keyword",
        ranking=((intent, confidence),),
    )


def _classify(cleaned: str, lowered: str) -> tuple[str, float]:
    if not cleaned:
        return "out_of_scope", 0.0
    if normalize.find_case_no(cleaned) and not re.search(r"取消|撤销|撤回", cleaned):
        return "query_progress", 0.8
    if re.fullmatch(r"\s*[1-5]\s*(分|星)?\s*|[一二三四五]\s*(分|星)", cleaned):
        return "rate_service", 0.7
    if (
        len(cleaned) <= 6
        and normalize.parse_score(cleaned) is not None
        and re.search(r"满意|一般|差", cleaned)
    ):
        return "rate_service", 0.7
    if _SERVICE_QUESTION.search(cleaned) and not normalize.find_items(cleaned, loose=True):
        # "微心愿怎么申请": a question about the programme, before "申请" reads as a wish
        return "ask_help", 0.6
    for intent, pattern, confidence in _RULES:
        if re.search(pattern, lowered):
            return intent, confidence
    if normalize.find_town(cleaned) or normalize_phone(cleaned):
        return "affirm", 0.3  # a bare slot answer ("住厚街", a phone number): the dialogue decides
    return "out_of_scope", 0.3
