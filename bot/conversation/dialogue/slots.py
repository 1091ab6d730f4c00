"""Reading the slots of a request the way residents say them: what is needed (one or several things), the town
even when corrected inside the sentence, and whether the message is an unambiguous cancel.

Pure functions over the message text and the model's entity values, so the dialogue's rules are testable alone.

- One request, several things: "米和油", "书包文具", "一袋米一桶油" are one request with items 米、油. Only things
  named side by side (joined by 和/跟/同/、/还有, a quantity, or nothing) belong together; a second thing named
  elsewhere in the story (a knee, the road outside, a synonym of the first thing) is not a second request.
- A second request only when the resident clearly says so ("另外还有一件事 …", "还有个事 …"): its words are
  returned apart so the dialogue can offer it as its own case.
- Visits and companionship are a service need: "派人陪陪她" → item 探访陪伴; a service noun stays as said
  ("上门探望" → 探望).
- Items are named as the annotation guide marks them (nlu_data/README.md): the thing without a modifier, place or
  owner before it ("智能电饭煲" → 电饭煲, "图书室啲空调" → 空调), two things joined by 同/和 kept apart ("轮椅同
  坐便椅") — but not widened to a whole token of the Rasa tokenizer where jieba glues the thing to the problem
  ("路灯不亮" stays 路灯): the item is what staff, donors and the wall read.
- "在凤岗 哦不对 是清溪", "不是石碣 是石龙": the town after the correction wins, a negated town never does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.conversation.nlu import compounds, fees, heads, recall, surface
from bot.conversation.nlu.beneficiary import (
    PERSON_WORDS,
    _tokens,
    candidates,
    cued_recipient,
    is_recipient,
    token_aligned,
    with_partners,
)
from bot.conversation.nlu.corrections import CANCEL_ONLY as CANCEL_ONLY  # re-exported for the dialogue
from bot.conversation.nlu.corrections import CORRECTION, NOT_X
from bot.conversation.nlu.corrections import is_cancel as is_cancel
from bot.conversation.nlu.corrections import read_town as read_town
from bot.conversation.nlu.normalize import (
    BENEFICIARY_RE,
    find_beneficiary,
    find_items,
    normalize_town,
)

#: the item of a visit or companionship wish
COMPANY_ITEM = "探访陪伴"
_COMPANY = re.compile(
    r"陪(?:伴|聊|护|同|下|一下|陪|佢|他|她|我|老人|吓)|探访|探望|看望|上门(?:看|睇|探|照顾|陪|关心|问候)|"
    r"(?:嚟|来|过嚟|过来)(?:看看|看下|睇下|睇睇|探下|探吓)(?:佢|他|她|我|老人)|"
    r"(?:倾|聊)(?:下|一下)?(?:偈|天)|聊聊|说说话|讲讲话|倾下偈"
)
# a visit or companionship said as a verb ("看看", "陪陪", "倾偈") names the service need 探访陪伴
# (the service nouns 探访, 探望, 看望, 陪伴, 陪聊 stay as the resident said them)
# (陪 alone, the guide's item of an errand — "[陪]佢去银行" —, stays as said)
_COMPANY_WORD = re.compile(
    r"^(?!陪$)(?:上门|定期|多|来|去)?(?:看看|看下|看一下|睇下|睇睇|陪陪|陪)(?:他|她|佢|一下|下)?$"
)
# "陪佢打麻将", "陪他聊聊天": the activity is the service, as said (the guide's `陪佢[散步]`)
_COMPANY_ACTIVITY = re.compile(
    r"陪\s*(?:下|吓)?\s*(?:佢|他|她|我\S{0,3}|老人家?|阿\S)?\s*(?:去)?\s*"
    r"(?P<s>聊聊天|聊天|倾偈|倾下偈|散步|散下步|打麻将|行街|饮茶|下棋|睇戏|看戏|跳舞|做运动|晒太阳|买菜|买餸)"
)
# "有人陪佢去医院": an errand; the guide's item is 陪 itself (`[陪]佢去银行`)
_COMPANY_ERRAND = re.compile(
    r"陪\s*(?:下|吓)?\s*(?:佢|他|她|我\S{0,3}|老人家?|阿\S)?\s*"
    r"(?:(?:去|返|到|上)\s*\S|(?:复诊|覆诊|睇医生|看医生|睇病|看病|体检|打针|拎药|攞药|取药))"
)
_VISIT_NOUN = re.compile(r"探访|探望|看望|陪伴|陪聊|陪诊")
# Words a model may tag as an item that are never a thing to give or fix: body parts, places and directions,
# times, people and pronouns, sounds and states.
_NOT_A_THING = re.compile(
    r"^(?:(?!扶手$|水龙头$|龙头$|摄像头$|枕头$|插头$|手杖$|手环$|手提电脑$).*(?:膝盖|腰|腿|脚|手|眼睛?|耳朵?|耳仔|头|头发|身体|心脏|骨头|气管|肺|胃|肾|腰骨)|外面|里面|楼下|楼上|门口|屋企|家里|屋里|附近|"
    r"旁边|对面|这边|那边|上面|下面|晚上|白天|早上|每天|平时|成日|天天|夏天|冬天|春天|秋天|热天|冷天|我|你|他|她|佢|佢哋|我们|我哋|"
    r"人|东西|嘢|问题|情况|事|事情|申请|帮助|帮忙|困难|电话|手机|号码|钱|费用|儿女|子女|家人|亲戚|邻居|老伴|"
    r"志愿者|义工|社工|工作人员|人手|收入|时间|地方|工作|胃口|水浸|水浸街|泥|窿|大窿|坑|危险|成座|成堆|斜|"
    # what a thing does or lacks, not a thing (冇反应, 冇声, 冇水压, 冇人理)
    r"反应|声|声音|水压|电|信号|人理|人管|人睇|"
    # an illness or a condition, not what is asked for (个女近视 → not 近视)
    r"近视|远视|弱视|散光|老花|哮喘|中风|痛风|瘫痪|骨折|[\u4e00-\u9fff]{0,4}(?:病|症|炎|癌))$"
)
# the one-character things a resident names (米, 床, 渠, 路 …); any other single character the model tags is junk
# (a verb or a state: 铺, 斜, 泥)
_SINGLE_THINGS = frozenset("米油被床渠路树灯椅凳药衫锅柜门窗桥墙")
# a modifier that stands as its own word before a thing: not part of the name (the guide's 电动[轮椅], 二手[电脑],
# 防褥疮[床垫]); a thing's own compound name (电风扇, 老花镜, 感应灯) is in the lexicon and stays whole
_MODIFIER_WORD = re.compile(
    r"^(?:电动(?!车)|二手|特制|智能|全自动|自动|多功能|可折叠|折叠|加厚|便携|防褥疮|儿童|成人|专用|普通|进口|新|旧)"
)
# where a thing is, before its name ("村尾条桥栏杆" → 栏杆 via the lexicon, "村围墙" → 围墙)
_PLACE_PREFIX = re.compile(
    r"^(?:我哋|我们)?(?:村口|村尾|村头|村入面|村里|村|小区|公园|学校门口|学校|门口|屋邨|屋企|家里|楼下|街口|路口|路边|"
    r"河边|河涌边|巷仔|巷口|社区|市场门口|市场|公交站|球场|广场|马路|路面)"
)
# a problem said of a thing ("个电梯成日坏", "条渠塞咗", "棵树就快冧"): its subject is the thing
_PROBLEM = re.compile(
    r"(?:成日|经常|又|全部|都|已经|就快|快|就|好|有啲|有点)?"
    r"(?:坏|烂|塞|点唔着|唔着|唔亮|烧(?=咗|坏|晒|了)|断(?=咗|晒|了)|冇声|冇反应|冇水压|褪(?:晒)?色|凹|跌落|不亮|断|裂|松|冇晒|冇咗|爆(?=咗|晒|开|裂|了)|发臭|发霉|(?<!乱)倒|冧|生锈|生晒锈|漏|穿|崩|甩|歪|满(?=咗|晒|了)|返臭|好臭|臭|堵|闪|"
    r"塌|掉|翘|开裂|残旧|破旧|老化|损坏|唔清楚|不清楚|睇唔清|看不清|太窄|太斜|太陡|太脏|好污糟)"
)
_SUBJECT_CUT = re.compile(r"[\s，,。！!？?、个条棵啲嘅的盏部只块张座嗰冇有]")
# asked for: a request verb, a quantity or classifier, the thing ("想要部雾化机", "想申请啲药俾佢")
_REQUEST = re.compile(
    r"(?:想要|想申请|申请|想整|整|配|想装|加装|装|想加|加|想换|换|买|捐|缺少|缺|"
    r"(?:(?:需|想|就)?要|送|搞|做)(?=[一两二三四五六七八九十几\d]{0,2}(?:部|个|张|副|支|只|盏|件|台|架|把|套|双|对|条|块|床|箱|袋|桶|包|罐|瓶|盒|批|份|本|顶|根|樽|粒)))"
    r"\s*返?(?:[一两二三四五六七八九十几\d]{0,2}(?:部|个|张|副|支|只|盏|件|台|架|把|套|双|对|条|块|床|箱|袋|桶|包|罐|瓶|盒|批|份|本|顶|根|樽|粒|啲|些|点))?"
    r"\s*(?=(?P<t>[\u4e00-\u9fff]{1,7}))"
)
_THING_HEADS = frozenset("机器床椅灯柜架台车垫镜箱桶杆牌亭栏梯盖窗门锁管炉锅凳桌鞋衫裤帽袜桩棚")
# the act before the thing it is done to ("申请维修屋顶", "想上门体检")
_LEADING_ACTS = frozenset(
    ("上门", "定期", "维修", "修理", "修", "整", "整返", "翻新", "清理", "安装", "装", "加装", "搞", "请")
)
# what follows a request verb but is not a thing: the programme, the act, help in general, a time word
_NOT_ASKED = re.compile(
    r"微心愿|微实事|心愿|维修|修理|修|清理|翻新|帮扶|帮助|援助|资助|补助|补贴|救济|服务|帮忙|上门|定期|好似|好像|而家|"
    r"依家|已经|经常|成日|"
    r"好多|有时|一下|下|啲|些|点|个|嘢|东西"
)
_OBJECT_END = re.compile(
    r"补助|资助|补贴|俾|畀|给|同|和|喺|坐|住|嚟|听|做|去|返|来|睇|食|瞓|写|读|洗|煮|推|放|啦|呀|啊|吖|喎|嘅|的|咗|过|"
    r"帮|比|先|都|可以|一下|下|呢|吗|嘛|用|照顾|解闷|自己|量|俾佢|每|几|就|又|太|好|冇|唔|不|人|钱"
)
# joins two things of one request: nothing, a conjunction, a negation repeated ("冇米冇油"), a quantity
_COORD_GAP = re.compile(
    r"^[\s、,，/和跟同埋与及加或再也都又冇没有还仲以]{0,4}"
    r"(?:[一二两三四五六七八九十几半\d]{1,3}[个袋桶张床台辆件套箱斤包瓶本支把双盒罐条只部副]|"
    r"[些点啲])?$"
)
# When neither the model nor the item lexicon names a thing: the shared places and services residents report
# or ask for, as the guide marks them ("[河涌]好臭希望可以清理", "[村道]坑坑洼洼"); the first one named, a place
# that only says where ("桥底积水" → 积水, "村道边的大树" → 大树) left out.
_FALLBACK_THING = re.compile(
    r"(?:无障碍通道|篮球场|羽毛球场|乒乓球台|健身路径|排水渠|臭水沟|垃圾站|垃圾房|化粪管|村道|巷道|河涌|水渠|"
    r"水沟|路面|围墙|台阶|楼梯|桥|大树|屋顶|停车场|球场|鱼塘|池塘|公厕|厕所|绿道|步道|巷子|广场)"
    r"(?![底边旁口上下里度头面脚侧个啲]|的|嘅|附近|对面)|"
    r"(?P<thing>积水|污水|垃圾|杂草|杂物|绿化|水管|水龙头|门锁|窗户|电线|插座|(?<=[冇没无])灯|灯(?=坏|唔亮|不亮|太暗)|"
    r"心理咨询|心理辅导|康复训练|康复|家政|护工|助浴|洗澡|冲凉|理发|送餐|送饭|送药|陪诊|打扫|托管|辅导|补习|法律援助|助学金|"
    r"(?:职业|技能|就业)培训|培训|探访|买菜|买餸|煮饭|洗衫|洗碗|剪指甲|剪头发|学费|药费|医药费|医疗费|交通费|电费|水费|伙食费|生活费|租金|房租)"
)
#: the resident says plainly that a second, separate matter follows
SECOND_MATTER = re.compile(
    r"(?:另外|此外|还有|仲有|另)(?:一|个)?(?:件|个|樣|样)?(?:事|事情|问题|嘢)|第二(?:件|个)(?:事|问题)?|"
    r"顺便(?:再)?(?:反映|说|讲|问|报)(?:一下|下)?"
)


# ------------------------------------------------------------------------------------------------- items
def _plausible(value: str) -> bool:
    v = value.strip()
    if not v or len(v) > 10 or _NOT_A_THING.match(v) or normalize_town(v):
        return False
    if len(v) == 1 and v not in _SINGLE_THINGS and v != "陪":
        return False
    return not BENEFICIARY_RE.fullmatch(v) and not re.fullmatch(r"[\d一二两三四五六七八九十百个只些]+", v)


_QUANTITY_OR_MODIFIER = re.compile(
    r"^(?:[一二两三四五六七八九十几半\d]{1,3}[个袋桶张床台辆件套箱斤包瓶本支把双盒罐条只部副根盏]|[个张部台把架])?"
    r"(?:村口|门口|楼下|巷口|路口|屋企|家里|屋里)?(?:二手|旧|新|好|坏咗?|烂咗?)?(?:的|嘅)?"
)
# a verb the model took along with the thing ("棉被盖")
_AFTER_THING = ("", "盖", "用", "坏", "烂", "着", "住", "瞓")


def _bare(value: str, lexicon: Sequence[str]) -> str:
    if value in lexicon or value == COMPANY_ITEM:
        return value
    modifier = _MODIFIER_WORD.match(value)
    if (
        modifier and len(value) > modifier.end()
    ):  # "电动轮奇" → 轮奇, "儿童滑梯" → 滑梯 (not 儿童游乐场: a place)
        rest = value[modifier.end() :]
        if _plausible(rest) and (len(rest) >= 2 or rest in _SINGLE_THINGS) and not _PLACE.search(rest):
            return _bare(rest, lexicon)
    for word in sorted(lexicon, key=len, reverse=True):
        at = value.find(word)
        if (
            at >= 0
            and _QUANTITY_OR_MODIFIER.fullmatch(value[:at])
            and value[at + len(word) :] in _AFTER_THING
        ):
            return word
    rest = _QUANTITY_OR_MODIFIER.sub("", value, count=1)
    if len(rest) < 2 and len(value) - len(rest) == 1:  # a classifier-looking first character (台阶, 架子)
        return value
    return rest if len(rest) >= 1 and rest != value and _plausible(rest) else value


def _same_thing(text: str, a: str, b: str) -> bool:
    """米/大米, 被子/棉被, 椅子/长椅: sharing a character is the same thing said twice — unless the resident joins
    the two with a conjunction ("轮椅同坐便椅", "血压计和体温计" are two things)."""
    if a in b or b in a:
        return True
    return bool(set(a) & set(b)) and not _joined(text, a, b)


_CONJUNCTION_GAP = re.compile(
    r"^\s*(?:和|跟|同埋|同|与|及|以及|、|,|，|仲有|还有|加)\s*(?:[一二两三四五六七八九十几\d]{1,3}\w)?$"
)


def _joined(text: str, a: str, b: str) -> bool:
    for a0, a1 in _spans(text, a):
        for b0, b1 in _spans(text, b):
            gap = text[a1:b0] if a1 <= b0 else text[b1:a0] if b1 <= a0 else None
            if gap is not None and _CONJUNCTION_GAP.match(gap):
                return True
    return False


# a modifier the model tagged as a thing of its own right before the thing ("智能/电饭煲"): not part of the name
_MODIFIER = re.compile(r"^(?:智能|全自动|自动|大|小|新|旧|二手|好|靓|平|贵|普通|最新|一般)$")
# a place named right before a thing says where the thing is ("篮球场/篮板", "公园/凳")
_PLACE = re.compile(r"(?:场|室|站|园|馆|中心|广场|公园|村道|巷|街|村|小区|社区|楼|桥|河边|门口)$")
# "图书室啲空调", "桥嘅栏杆": the first is where the second is, or whose it is; the thing is the second
_OWNER_GAP = re.compile(r"^(?:啲|嘅|的|个|里面|入面|里|度)$")


def _combine(text: str, values: Sequence[str]) -> list[str]:
    """The model's items as the guide names them: a modifier before the next item dropped, two items side by side
    with nothing between them one name ("平板/电脑" → 平板电脑), a place or owner before 啲/嘅/的 + item dropped."""
    out = list(values)
    changed = True
    while changed:
        changed = False
        for a in out:
            for b in out:
                if a == b or a not in text or b not in text:
                    continue
                at = text.find(a + b)
                if at >= 0 and not (a in heads.STAPLES and b in heads.STAPLES):  # "米油": two things
                    out = [v for v in out if v not in (a, b)]
                    out.insert(
                        0, b if _MODIFIER.match(a) or _PLACE.search(a) or a in ("上门", "定期") else a + b
                    )
                    changed = True
                    break
                if any(
                    _OWNER_GAP.match(text[a1:b0])
                    for _, a1 in _spans(text, a)
                    for b0, _ in _spans(text, b)
                    if b0 > a1
                ):
                    out = [v for v in out if v != a]
                    changed = True
                    break
            if changed:
                break
    return sorted(dict.fromkeys(out), key=lambda v: text.find(v) if v in text else len(text))


_ALTERNATIVE = re.compile(r"\s*(?:都得|都可以|也可以|也行|都行)")


def _spans(text: str, value: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(re.escape(value), text)]


def _coordinated(text: str, a: str, b: str) -> bool:
    """Whether some mention of `a` and some mention of `b` stand side by side ("米和油", "一袋米一桶油")."""
    for a0, a1 in _spans(text, a):
        for b0, b1 in _spans(text, b):
            gap = text[a1:b0] if a1 <= b0 else text[b1:a0] if b1 <= a0 else None
            if gap is None or not _COORD_GAP.match(gap) or gap.strip() in ("啲", "嘅", "的"):
                continue
            first = a0 if a1 <= b0 else b0
            if gap.strip() in ("冇", "没有", "没", "无") and not re.search(
                r"(?:冇|没有|没|无)$", text[:first]
            ):
                continue  # "消防通道冇指示牌": the first is where the second is missing, not a second thing
            return True
    return False


@dataclass(frozen=True, slots=True)
class Items:
    items: tuple[str, ...]  # the things of this request, in order ("米", "油"); () when none is named
    second: str | None = None  # the words of a clearly separate second matter, when the resident gave one

    @property
    def value(self) -> str | None:
        return "、".join(self.items) if self.items else None


def read_items(text: str, model_items: Iterable[str], *, wish: bool = True) -> Items:
    """The things one request asks for: the model's items checked against the text and the item lexicon."""
    simple = surface.simplify(text)  # "想要部輪椅": read as 轮椅, given back as written
    if simple.text != text:
        whole = read_items(simple.text, [surface.simplify(v).text for v in model_items], wish=wish)
        second = simple.reopen(whole.second) if whole.second else None
        return Items(tuple(simple.reopen(v) for v in whole.items), second)
    closed = surface.close(
        text
    )  # "助 听 器": the word voice input split, read whole and given back as written
    if closed.text != text:
        whole = read_items(closed.text, [surface.squeeze(v) for v in model_items], wish=wish)
        return Items(tuple(closed.reopen(v) for v in whole.items), whole.second)
    first_part, second = split_second_matter(text)
    found = _things(first_part, recall.model_values(first_part, model_items), fallback=True, wish=wish)
    found = compounds.named(first_part, recall.read(first_part, found, wish=wish))  # nlu/recall, compounds
    activity = _COMPANY_ACTIVITY.search(first_part) if wish else None
    if not found and activity:
        found = [activity.group("s")]
    elif not found and wish and _COMPANY_ERRAND.search(first_part):
        found = ["陪"]
    errand = _COMPANY_ERRAND.search(first_part) if wish else None
    if errand and found and all(first_part.find(v) > errand.start() for v in found):
        found = ["陪"]  # "陪佢去医院复诊": the errand is the need, not what it is for
    noun = _VISIT_NOUN.search(first_part) if wish else None
    visit = [token_aligned(first_part, noun.group())] if noun else [COMPANY_ITEM]
    if not found and wish and _COMPANY.search(first_part):
        found = visit  # the service noun as said ("上门探望" → 探望), else 探访陪伴
    elif wish:  # a visit the structure read as a verb ("上门看看他" → 看看): the service, as a case names it
        found = [visit[0] if _COMPANY_WORD.match(v.strip()) else v for v in found]
    if second is not None and not _things(second, [v for v in model_items if v and v in second]):
        second = None  # "另外" without a second thing named: one request told in two parts
    return Items(
        tuple(dict.fromkeys(surface.plain(v, first_part) for v in found)), second
    )  # "格力风扇" → 风扇, "袋米" → 米


def _after(text: str, value: str) -> str:
    """The word right after `value` in `text`: a known thing starting there, else the next token of the Rasa
    tokenizer ("电动" in "电动轮奇" → 轮奇)."""
    at = text.find(value)
    if at < 0:
        return ""
    rest = text[at + len(value) :]
    known = next((w for w in find_items(rest) if rest.startswith(w)), None)
    if known:
        return known
    word = next((w for w, s, _ in _tokens(rest) if s == 0), "")
    return word if word.strip() and _plausible(word) and len(word) >= 2 else ""


def _object(words: str, lexicon: Sequence[str]) -> str:
    """The thing at the start of `words` (what follows a request verb): a known thing, else the words up to the
    first verb, particle or pronoun, without a modifier or a place in front."""
    words = _PLACE_PREFIX.sub("", words, count=1) or words
    known = next((w for w in lexicon if words.startswith(w)), None)
    if known:  # 台灯 keeps its 台; a known thing with a head after it is another thing (文具/盒 → 文具盒)
        longer = heads.tagged(words, hmm=False)[
            0
        ].word  # one word of the tokenizer (文具盒), not a new word after it (红绿灯/车)
        return longer if len(longer) == len(known) + 1 and longer[-1] in heads.HEAD_CHARS else known
    words = _QUANTITY_OR_MODIFIER.sub("", words, count=1)
    modifier = _MODIFIER_WORD.match(words)
    words = words[modifier.end() :] if modifier and len(words) > modifier.end() else words
    known = next((w for w in lexicon if words.startswith(w)), None)
    if known:
        return known
    words = re.split(r"同埋|同|和|跟|、|[一两二三四五六七八九十几\d]", words, maxsplit=1)[0]
    tokens = [w for w, _, _ in _tokens(words)]
    while tokens and tokens[0] in _LEADING_ACTS:
        tokens = tokens[1:]  # "申请上门体检" → 体检, "申请维修屋顶" → 屋顶
    first = tokens[0] if tokens else ""
    ok = (
        first
        and not _OBJECT_END.fullmatch(first)
        and first[0] not in "人钱我你佢他她有成"
        and not _NOT_ASKED.fullmatch(first)
    )
    thing = first if ok else ""

    for word in tokens[
        1:
    ]:  # a head the tokenizer split off ("雾化/机", "感应/灯", "空气/净化器", "生活/物资")
        tail = next((w for w in lexicon if words[len(thing) :].startswith(w)), "")
        if thing and tail and len(thing) + len(tail) <= 6:  # "电动车/充电桩": a known thing's kind before it
            thing += tail
            break
        if word in ("物资", "用品", "设施", "设备", "器材", "服务", "改造") and len(thing) + len(word) <= 6:
            thing += word
            continue
        if word[-1] not in _THING_HEADS or len(thing) + len(word) > 5 or _OBJECT_END.fullmatch(word):
            break
        thing += word
    if thing.startswith(("过", "新嘅")):
        return ""  # "想申请过个", "想换过架": the same thing again, named before
    if thing and re.match(re.escape(thing) + r"\s*(?:的|嘅)", words):
        return ""  # "残疾的儿子": a description, not the thing
    return _bare(thing, lexicon) if thing and len(thing) <= 6 and _plausible(thing) else ""


def _subject(before: str, lexicon: Sequence[str]) -> str:
    """The thing a problem is said of: the words right before it, after the last classifier, 啲/嘅 or a pause,
    without the place in front ("村尾条桥栏杆" → 栏杆, "村围墙" → 围墙)."""
    cuts = list(_SUBJECT_CUT.finditer(before))
    words = before[cuts[-1].end() :] if cuts else before
    known = next((w for w in lexicon if words.endswith(w)), None)
    if known:
        return known
    tokens = [w for w, _, _ in _tokens(words)]
    if not tokens:
        return ""
    thing = tokens[-1]  # the last word before the problem; a head split off keeps its modifier ("感应/灯")
    if (
        len(thing) == 1
        and thing in _THING_HEADS
        and len(tokens) > 1
        and not _PLACE_PREFIX.fullmatch(tokens[-2])
    ):
        thing = tokens[-2] + thing
    if thing[0] in "人钱我你佢他她有成被" or _OBJECT_END.fullmatch(thing) or _PROBLEM.match(thing):
        return ""
    if _NOT_ASKED.fullmatch(thing):
        return ""
    if re.match(r"[一两二三四五六七八九十几\d]", thing) or re.search(
        r"[到多太都又就]", thing
    ):  # "一支都唔着", "蚊多到爆"
        return ""
    return _bare(thing, lexicon) if len(thing) <= 5 and _plausible(thing) else ""


def _patterned(text: str, lexicon: Sequence[str], *, wish: bool) -> list[str]:
    """Things the sentence's shape names, whatever they are: what a request verb asks for, and (in a project) what
    a problem is said of or what is missing ("冇路登")."""
    asked, said = _shaped(text, lexicon, wish=wish)
    return [*asked, *(f for f in said if f not in asked)]


def _shaped(text: str, lexicon: Sequence[str], *, wish: bool) -> tuple[list[str], list[str]]:
    """(what a request verb asks for, what a problem is said of or is missing), each without repeats or persons."""

    persons = {w for _, w in candidates(text)}  # whom the text names as a possible recipient (侄孙, 流浪汉)

    def keep(found: Iterable[str]) -> list[str]:
        return [
            f
            for f in dict.fromkeys(found)
            if f
            and not BENEFICIARY_RE.fullmatch(f)
            and f not in PERSON_WORDS
            and f not in persons
            and f not in heads.GENERIC_AREAS  # 地面: which side of the whole
        ]

    # the head nouns the structure names (nlu/heads.py) first: what a request verb governs, a service asked of a
    # helper; then the older character-level readings where they name something else
    asked = keep(heads.governed(text) + heads.services(text))
    asked += [f for f in keep(fees.fees(text)) if not any(a in f or f in a for a in asked)]
    if not asked:
        asked = keep(a for m in _REQUEST.finditer(text) for a in _with_next(text, m.start("t"), lexicon))
    # a known thing with the place it is in before it ("桥栏杆" → 栏杆)
    said = keep(
        next((w for w in lexicon if v.endswith(w) and _PLACE.search(v[: -len(w)])), v)
        for v in heads.classified(text)
    )
    if not said and not asked and not wish:  # pests or a nest where people are ("菜市场好多老鼠")
        said = keep(heads.pests(text))
    if not said and not asked and not wish:  # what the project's first clause is about ("天台铁闸俾人锁死咗")
        said = keep(next((w for w in lexicon if v.endswith(w)), v) for v in heads.topics(text))
    if not said:
        said = keep(_subject(text[: m.start()], lexicon) for m in _PROBLEM.finditer(text))
    # what is missing: in a project any "冇X"; in a wish what the household lacks for its use ("冇凉席瞓",
    # "连蚊香都买唔起", "冇水壶带")
    lacking = _LACKING if not wish else _LACKING_FOR_USE
    missing = (_object(m.group("t") or m.group("t2"), lexicon) for m in lacking.finditer(text))
    # a generic part missing ("垃圾屋冇门") says what is wrong with the whole, it is not the thing
    return asked, _beside(said, keep(w for w in missing if w not in heads.GENERIC_PARTS))


_PERSON_AFTER = re.compile("|".join(sorted(map(re.escape, PERSON_WORDS), key=len, reverse=True)))


def _beside(first: list[str], more: Iterable[str]) -> list[str]:
    """`first` and the values of `more` that are not a part or a widening of one of them (言语 beside 言语治疗)."""
    out = list(first)
    for value in more:
        if not any(value in v or v in value for v in out):
            out.append(value)
    return out


_LACKING = re.compile(r"(?:冇|没有|无)(?=(?P<t>[\u4e00-\u9fff]{1,5}))")
_LACKING_FOR_USE = re.compile(
    r"(?:冇|没有)(?=(?P<t>[\u4e00-\u9fff]{1,4}?)(?:瞓|盖|用|着|戴|带|换|食|饮|玩|读|写|坐|睇|煮|冲凉|\s|$))|"
    r"连(?=(?P<t2>[\u4e00-\u9fff]{1,4}?)都(?:冇|没有|买唔起|买不起))"
)
# a second thing asked for with the first ("一张棉胎同一对拖鞋", "血糖仪同埋试纸")
_AND_NEXT = re.compile(
    r"\s*(?:同埋|同|和|跟|及|、)\s*(?:[一两二三四五六七八九十几\d]{0,2}(?:部|个|张|副|支|只|盏|件|台|架|把|套|双|对|条|块|箱|袋|桶|包|罐|瓶|盒|份|本|顶|根))?"
    r"(?=(?P<t>[\u4e00-\u9fff]{1,7}))"
)


def _with_next(text: str, at: int, lexicon: Sequence[str]) -> list[str]:
    """What a request verb asks for at `at`, and the things joined to it by 同/和 after it."""
    found: list[str] = []
    while len(found) < 4:
        thing = _object(text[at : at + 7], lexicon)
        if not thing or thing in PERSON_WORDS or BENEFICIARY_RE.fullmatch(thing):
            break
        found.append(thing)
        end = text.find(thing, at)
        nxt = _AND_NEXT.match(text, end + len(thing)) if end >= 0 else None
        if nxt is None:
            break
        at = nxt.start("t")
    return found


def _unglued(text: str, value: str) -> str:
    """The model's item without the first character of the problem it took along ("热水炉点/唔着" → 热水炉,
    "扶手松/咗" → 扶手)."""
    at = text.find(value)
    if len(value) > 2 and at >= 0:
        problem = _PROBLEM.match(text, at + len(value) - 1)
        glued = problem and (
            problem.end() > at + len(value) or text.startswith(("咗", "晒", "了"), problem.end())
        )
        if problem and glued and problem.group()[0] == value[-1]:
            return value[:-1]
    return value


_PART_GAP = re.compile(r"^\s*(?:个|啲|条|块|张|只|盏|部|嘅|的|度)?$")


def _part_of(text: str, whole: str, said: Sequence[str]) -> str:
    """The part a problem is said of, when it follows `whole` directly and has a name of its own."""
    for part in said:
        if part == whole or part in whole or len(part) < 2:
            continue
        at, end = text.find(whole), text.find(part)
        if 0 <= at < end and _PART_GAP.match(text[at + len(whole) : end]):
            return part
    return whole


def _things(text: str, model_items: Sequence[str], *, fallback: bool = False, wish: bool = True) -> list[str]:
    named = [COMPANY_ITEM if _COMPANY_WORD.match(v.strip()) else v.strip() for v in model_items]
    # a modifier alone names the thing after it ("电动" of 电动轮椅 → 轮椅: the guide's 电动[轮椅])
    named = [(_after(text, v) or v) if _MODIFIER_WORD.fullmatch(v) else v for v in named]
    candidates = [v for v in dict.fromkeys(named) if v == COMPANY_ITEM or _plausible(v)]
    candidates = [_unglued(text, c) for c in _combine(text, candidates)]
    lexicon = find_items(text)
    # a part of a known thing is that thing
    candidates = [next((w for w in lexicon if c in w and len(w) > len(c)), c) for c in candidates]
    # the thing without a quantity, a modifier or what follows it ("二手电动轮椅" → 轮椅, "棉被盖" → 棉被)
    candidates = [_bare(c, lexicon) for c in candidates]
    candidates = list(dict.fromkeys(candidates))
    asked, said = _shaped(text, lexicon, wish=wish)
    shaped = [*asked, *(f for f in said if f not in asked)]
    # what the sentence's structure says is asked for (a request verb's object, a service asked of a helper): a
    # model item elsewhere in the story (a place, an illness, what the thing is for) is not the request
    headed = [*heads.governed(text), *heads.services(text)]
    headed += [f for f in fees.fees(text) if not any(h in f or f in h for h in headed)]
    # in a project, likewise what a classifier introduces and a predicate talks about ("啲树池凹咗": not 人行道)
    teeming = [] if wish or headed else heads.pests(text)
    headed = headed or ([] if wish else [*heads.classified(text)] or teeming or heads.topics(text))
    if teeming and headed == teeming:  # "好多老鼠 想搞下灭鼠": the pest, not what is done to it
        candidates = [c for c in candidates if c in teeming]
    if headed:
        candidates = [
            c
            for c in candidates
            if any(c in h or h in c or _coordinated(text, c, h) or _same_thing(text, c, h) for h in headed)
            or _ALTERNATIVE.match(text, text.find(c) + len(c))  # "想装部冷气 风扇都得": each is asked for
        ]
        # a model item inside the name the structure reads is that name (游泳 of 游泳班)
        candidates = [next((h for h in headed if c in h and c != h), c) for c in candidates]
    # a model item that describes the person after it is no thing (清洁阿姨)
    candidates = [c for c in candidates if not _PERSON_AFTER.match(text, text.find(c) + len(c))]
    # the model's money word for a thing the sentence asks for ("想申请啲药 药费太贵": 药, not 药费)
    candidates = [next((a for a in asked if c == a + "费"), c) if c.endswith("费") else c for c in candidates]
    # a project's broken part with its own name, not the whole or the place it belongs to ("公告栏块玻璃爆咗" →
    # 玻璃, "电梯啲按钮…冇反应" → 按钮; a generic part — 门, 盖, 网 — gives the whole: "电箱个门冇咗" → 电箱)
    if not wish:
        candidates = [_part_of(text, c, said) for c in candidates]
    # the primary thing: a model item the lexicon or the sentence's shape confirms; a known thing the shape names;
    # the model's first; what a request verb asks for; the lexicon's first; what a problem is said of
    primary = next((c for c in candidates if any(c in w or w in c for w in lexicon)), None)
    primary = primary or next((c for c in candidates if c in shaped), None)
    primary = primary or next((w for w in lexicon if w in shaped), None)
    if primary is None:
        firsts = [*candidates[:1], *asked[:1], *said[:1], *lexicon[:1]]
        primary = firsts[0] if firsts else None
    if primary is None and not wish:
        # what the project's first clause is about ("天台铁闸俾人锁死咗" → 铁闸, "排洪渠积满淤泥" → 排洪渠)
        primary = next(iter(heads.topics(text)), None)
    if primary is None and fallback:
        # a thing or a service before a place ("球场冇灯" → 灯)
        matches = list(_FALLBACK_THING.finditer(text))
        primary = next((m.group() for m in matches if m.lastgroup == "thing"), None)
        primary = primary or next((m.group() for m in matches), None)
    if primary is None:
        return []
    chosen = [primary]
    structural = [*asked, *said]
    loose = [*candidates, *find_items(text, loose=True)]
    for other in [*loose, *(w for w in said if w not in loose)]:
        # a lexicon word inside a longer name the structure reads ("长凳" for 凳): that name
        other = next((s for s in structural if other in s and other != s), other)
        if any(_same_thing(text, other, c) for c in chosen):
            continue
        joined = (
            _coordinated if other in loose else _joined
        )  # what a predicate is said of: joined by 同/和 only
        if any(joined(text, c, other) for c in chosen):
            chosen.append(other)
    # a thing the sentence asks for in so many words, or a known thing it says is broken, is the request's too
    # ("屋企个雪柜坏咗 想换个冰箱", "想要张书桌 … 仲想要个台灯")
    for other in [*asked, *(w for w in said if w in lexicon or (not wish and len(w) >= 2))]:
        # things the structure names side by side are distinct even when they share a character (牙膏/牙刷)
        if not any(
            ((other in c or c in other) and not (c in asked and _listed(text, c, other)))
            or (c not in asked and _same_thing(text, other, c))
            for c in chosen
        ):
            chosen.append(other)
    # the thing as staff, the donor and the wall read it: not widened to the whole token the tokenizer glues it into
    # ("灯坏晒" stays 灯, not the guide's span 灯坏; "路灯不亮" stays 路灯) — the item F1 against the guide's spans pays
    # for it (nlu_data/README.md)
    # keep the order in which the resident named them
    return sorted(chosen, key=lambda v: text.find(v) if v in text else len(text))


def _listed(text: str, a: str, b: str) -> bool:
    """Whether `a` and `b` are named one after the other in a list (镬同镬铲, 油、豉油), not one inside the other."""
    return any(
        _LIST_GAP.match(text[a1:b0] if a1 <= b0 else text[b1:a0])
        for a0, a1 in _spans(text, a)
        for b0, b1 in _spans(text, b)
        if a1 <= b0 or b1 <= a0
    )


_LIST_GAP = re.compile(r"^\s*(?:同埋|同|和|跟|与|及|、|,|，)\s*$")


def split_second_matter(text: str) -> tuple[str, str | None]:
    """ "我要个轮椅 另外还有个事 村口路灯坏了" → ("我要个轮椅", "村口路灯坏了"); no marker → (text, None)."""
    m = SECOND_MATTER.search(text)
    if m is None or m.start() < 4:
        return text, None
    rest = text[m.end() :].strip(" ，,。:：就是系")
    return (text[: m.start()].strip(" ，,。"), rest) if len(rest) >= 4 else (text, None)


def corrected_item(text: str, model_items: Iterable[str], *, current: str | None) -> str | None:
    """A new item in a correction at the summary ("不对 不是轮椅 是助听器" → 助听器), or None when the message
    does not change the item. A negated thing is never taken."""
    negated = {m.group(1) for m in NOT_X.finditer(text)}
    positive = NOT_X.sub(" ", text)
    found = _things(positive, [v for v in model_items if v and v in positive])
    if not found:
        return None
    value = "、".join(found)
    if current and value == current:
        return None
    if current and not (
        find_items(positive) or any(current in n for n in negated) or CORRECTION.search(text)
    ):
        return None  # a stray word the model took for a thing; the item the resident confirmed stays
    return value


# ------------------------------------------------------------------------------------------------- who for
def read_beneficiary(text: str, model_value: str | None) -> str | None:
    """Whom a wish is for: the model's person word when it names a recipient, completed or replaced by the
    kin-word finder (`nlu.beneficiary`) when the model took a part of it ("留守" of 留守儿童), a state ("独居" in
    "独居阿公" → 阿公), the speaker's status (低保户), a non-recipient (邻居) or a kin word who is not the
    recipient ("我老婆走咗之后…")."""
    simple = surface.simplify(text)  # "我嫲嫲": read in simplified characters, given back as written
    if simple.text != text:
        value = read_beneficiary(simple.text, surface.simplify(model_value).text if model_value else None)
        return "、".join(simple.reopen(v) for v in value.split("、")) if value else None
    closed = surface.close(text)  # "阿 婆": read whole, given back as written
    if closed.text != text:
        value = read_beneficiary(closed.text, surface.squeeze(model_value) if model_value else None)
        return "、".join(closed.reopen(v) for v in value.split("、")) if value else None
    found = find_beneficiary(text)
    value = (model_value or "").strip()
    if not value:
        return found
    if is_recipient(text, value):
        cued = cued_recipient(text)  # the message says whom it is for ("帮阿妈…", "… 俾佢"): that person
        return cued or with_partners(text, value)  # "想帮老豆申请": the one the request names, alone
    if found and any(value in f or f in value for f in found.split("、")):
        return found  # the model took a part of the person or glued a neighbour to it (留守, 我妈, 仔上)
    if _NOT_A_PERSON.search(value) or BENEFICIARY_RE.search(value) or value in PERSON_WORDS:
        return found
    if found or not _PERSON_LIKE.search(value) or len(value) < 2:
        return found  # a thing or a state the model took for a person ("筷子", "精神"), or a part of a word (外卖仔)
    return value  # a person word the lexicon does not know


# how a person word the lexicon does not know ends (a kin title, a group)
_PERSON_LIKE = re.compile(
    r"(?<!其他)(?:人|士|者|仔|女|公|婆|伯|叔|姨|妈|爸|哥|姐|弟|妹|孙|儿|爷|嫲|囡|佬|嫂|婶|舅)$"
)
# the model's beneficiary is sometimes a state or a status, or someone who is not the recipient
_NOT_A_PERSON = re.compile(
    r"^(?:独居|空巢|留守|残疾|孤寡|困难|低保|单亲|瘫痪|行动不便|生病)$|"
    r"低保户|困难户|五保户|单亲|外来工|工人|邻居|街坊|社工|义工|志愿者|工作人员|公婆|^(?:两老|本人|自己|家人|屋企人)$|"
    r"^(?:我|你|佢|他|她|我哋|我们)$"
)
