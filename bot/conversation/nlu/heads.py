"""Head nouns from the sentence's structure and part-of-speech tags: what a request verb governs, what a classifier
introduces and a predicate then talks about, which service a helper is asked to do, what a project's clause is
about — whatever the thing is called, so a thing no lexicon lists is still read.

jieba.posseg with the project's user dictionary (the same tokenizer as `nlu.beneficiary` and the Rasa pipeline)
tags the words; jieba's tags are unreliable on Cantonese (煲烂咗个窿/n, 轮/q 倚/v), so each reading anchors on what
is certain — a request verb, a classifier, a predicate, 帮/陪 — and uses the tags only for the words in between:

- a noun phrase is a run of noun-like words; a one-character head joins the word before it (吸痰/机 → 吸痰机,
  空调/扇 → 空调扇, 机耕/路 → 机耕路); a leading modifier is dropped when the head is a concrete noun of its own
  (孕妇/奶粉 → 奶粉, 防抖/餐具 → 餐具, 来回/车费 → 车费) and kept when the head is a service (言语/治疗 → 言语治疗,
  临时/救助 → 临时救助); concrete nouns side by side after a request verb are a list (牙膏/牙刷/毛巾 → three);
- what a request verb governs (想要/申请/买/装/换/学/戴/开返/搞 …), past a quantity, a classifier, a modifier or a
  description ending in 嘅/的 ("想要张可以坐住冲凉嘅凳" → 凳), and the things joined to it by 同/和;
- what a classifier introduces when a predicate follows ("个镬生晒锈" → 镬, "张棉台薄到透光" → 棉台, "村头个水闸
  锈死咗" → 水闸): a thing named by its classifier and then talked about;
- a service asked of a helper: 帮/陪/上门 + the person + a verb and its object ("帮佢倒垃圾" → 倒垃圾, "陪佢饮早茶"
  → 饮早茶, "帮我读信同填表" → 读信, 填表);
- in a project, what a clause is about: the head of the noun phrase that opens it, before its predicate ("天台铁闸
  俾人锁死咗" → 铁闸, "排洪渠积满淤泥" → 排洪渠).

Pure and deterministic; tags are cached per text.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bot.conversation.nlu import described
from bot.conversation.nlu.beneficiary import _SHORT_KIN, PERSON_WORDS, _tokenizer
from bot.conversation.nlu.normalize import ITEMS
from bot.conversation.nlu.postag import install

_KNOWN = frozenset(ITEMS)

_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Tagged:
    word: str
    flag: str
    start: int
    end: int


@lru_cache(maxsize=1)
def _pos_tokenizer() -> Any:
    # jieba's dictionary (≈ 1 s to load) only on the first reading, not on import, as in nlu.beneficiary
    import jieba.posseg

    install()  # the same tags, with less work (nlu.postag)
    with _lock:
        return jieba.posseg.POSTokenizer(_tokenizer())


@lru_cache(maxsize=512)
def tagged(text: str, *, hmm: bool = True) -> tuple[Tagged, ...]:
    """The words of `text` with their part-of-speech flags and character offsets. `hmm` lets jieba guess words it
    does not know (棉台, 轮倚) — most of the reading's CPU on long texts, so a part of a text already read whole is
    tagged without it."""
    out: list[Tagged] = []
    at = 0
    for pair in _pos_tokenizer().cut(text, HMM=hmm):
        out.append(Tagged(pair.word, pair.flag, at, at + len(pair.word)))
        at += len(pair.word)
    return tuple(out)


CLASSIFIERS = "个张部架条只把块盏对根顶套副支件台辆双箱袋桶包罐瓶盒份本樽粒座棵段道"
_NUM = "一二两三四五六七八九十几半\\d"
# a quantity, a classifier or a determiner before a thing ("一张", "两罐", "部", "啲", "嗰个")
_QUANTITY = re.compile(rf"(?:[{_NUM}]{{0,3}}[{CLASSIFIERS}]|嗰个|呢个|嗰啲|呢啲|啲|些|几)")
# a one-character word that heads the name before it (吸痰/机, 空调/扇, 机耕/路, 车位/线)
HEAD_CHARS = frozenset(
    "机器椅凳床柜架台车垫镜箱桶杆牌亭栏梯窗锁管炉锅煲镬盆扇环柱桩板表盒袋帽鞋衫裤袜桌枱篦闸路线渠池棚室灯碗杯屋"
)
# one-character parts that only say where on the whole the problem is (the guide: the whole is the item)
GENERIC_PARTS = frozenset("门盖顶角网口边面辘脚头窿底")
# two-character words that only say which side of the whole the problem is on (篮球场地面裂晒 → 篮球场)
GENERIC_AREAS = frozenset(("地面", "表面", "墙面", "墙身", "底部", "顶部", "四周", "周围", "外面", "里面"))
_NOUNISH = ("n", "l", "j", "g", "eng", "vn", "nz")  # flag prefixes of a noun-like word (n covers nr, nt …)
# words that are never the thing, whatever the tagger says (persons, pronouns, times, places, the body, money)
_NOT_THING = re.compile(
    r"^(?:佢|我|你|他|她|佢哋|我哋|人|有人|自己|嘢|东西|钱|时间|机会|地方|日|礼拜|月|年|次|阵|下|度|窿|口|边|头|"
    r"面|街|屋企|家里|屋|房|乡下|学校|医院|医生|老师|社工|义工|工作人员|天分|免费|问题|情况|事|之后|以前|而家|"
    r"今年|冬天|夏天|夜晚|晚上|日头|上面|下面|里面|入面|外面|旁边|门口|附近|所有|全部|成个|成条|其他|乜嘢|"
    r"手|脚|眼|眼睛|耳|耳仔|身|腰|膝头|心|水|泥|风|雨|车|书|字|饭|粥|衫|佢地|村民|街坊|细路|后生仔|巷|村|楼|"
    r"(.)\1(.)\2|\S{0,2}(?:心愿|实事)|帮助|帮忙|援助|服务|手脚|腿脚|头痛|宿舍|单亲|电话|后生|手艺|技术|本事|大?(?:窿|坑|洞)|\S*户|(?:双|两|左|右)?(?:手|脚|耳|眼|腿)|"
    r"(?:上|返|读|去|出|落)(?:学|班|工|街|课|堂))$"
)
# the head of a service: the modifier before it names the kind of service and stays (言语治疗, 临时救助)
_SERVICE_HEAD = re.compile(r"(?:治疗|救助|培训|咨询|辅导|护理|服务|援助|训练|课堂|课程|班|检查|体检|饭堂)$")
# a money word after the thing ("交通费补贴", "医药费补助"): not part of its name
_GENERIC_HEADS = frozenset(("物资", "用品", "设施", "设备", "器材", "用具"))
_MONEY_AFTER = frozenset(("补助", "补贴", "资助", "救济", "费用"))
# a modifier standing as its own word (新镬 → 镬, 二手梳化 → 梳化)
_MODIFIER = re.compile(
    r"^(?:新|旧|大|细|小|好|靓|厚|薄|长|短|高|矮|软|硬|平|贵|二手|新嘅|电动|智能|普通|专用|特制|全自动|自动|分类|公共)$"
)
# what says something about a thing named before it: a problem, a state, a negation, a passive
PREDICATE = re.compile(
    r"(?:成日|经常|又|全部|都|已经|就快|快|就|好|有啲|有点|一|日日|次次|成个月|好耐)?\s*"
    r"(?:堆(?=咗|满|晒|到)|咗|晒|俾|被|露|冇|日晒|唔|不|没|生晒|生满|生锈|锈|烂|坏|塞|爆|破|断|甩|穿|崩|漏|裂|凹|翘|松|冧|倒|跌|"
    r"闪|褪|薄|臭|歪|塌|积满|积|拱|压住|停咗|荒废|踩落|按极|点唔着|烧|霉|脏|污糟|太|过咗期|乱|剪开|撞|吹走|"
    r"冲唔到|枯|有条?大?裂(?:痕|缝)|转唔|唔转|(?:转|郁)都(?:转|郁)唔|唔着|不亮|不平|凹凸|坑坑洼洼|好(?=[\u4e00-\u9fff])|一?落(?:完|大|暴)?雨|多(?:到|得))"
)


def _nounish(t: Tagged) -> bool:
    if _NOT_THING.match(t.word) or t.word in PERSON_WORDS or not re.fullmatch(r"[\u4e00-\u9fff]+", t.word):
        return False
    if t.word[0] in "冇没无唔不有":
        return False  # a negation or existence the tagger glued to a word (冇参考书)
    if t.flag.startswith("ns") or t.flag == "nr" and (len(t.word) > 3 or re.search("[我你佢他她]", t.word)):
        return False  # a place or a person's name, or a pronoun the tagger glued to a word
    return t.flag.startswith(_NOUNISH) or (len(t.word) == 1 and t.word in HEAD_CHARS)


def _single_head(t: Tagged) -> bool:
    return len(t.word) == 1 and (t.word in HEAD_CHARS or t.flag in ("ng", "g"))


def noun_phrase(tokens: tuple[Tagged, ...], i: int, *, as_list: bool = True) -> list[str]:
    """The thing(s) named by the noun phrase starting at token `i` (see the module doc), or []."""
    parts: list[Tagged] = []
    mods: list[str] = []
    skipped = False
    j = i
    while j < len(tokens) and len(parts) < 5:
        t = tokens[j]
        if parts and (
            PREDICATE.match(t.word)
            or (
                len(t.word) == 1
                and t.flag == "n"
                and t.word not in HEAD_CHARS
                and t.word not in GENERIC_PARTS
            )
        ):
            break  # a predicate, or a one-character word that starts another clause (职业培训/学/汽修)
        pair = (  # 书/台, 车/位: a one-character noun before a one-character head is a name of its own
            not parts
            and len(t.word) == 1
            and t.flag == "n"
            and j + 1 < len(tokens)
            and len(tokens[j + 1].word) == 1
            and tokens[j + 1].word in HEAD_CHARS
        )
        if (
            _nounish(t)
            or pair
            or (parts and (_single_head(t) or t.word in GENERIC_PARTS))
            or (parts and _SERVICE_HEAD.search(t.word))
        ):
            parts.append(t)
        elif (
            t.word in PERSON_WORDS and j + 1 < len(tokens) and _nounish(tokens[j + 1])
        ):  # 长者/饭堂, 老人/机: a person word naming whom a thing is for
            parts.append(t)
        elif (
            t.flag.startswith(("v", "a", "b"))
            and j + 1 < len(tokens)
            and len(tokens[j + 1].word) == 1
            and tokens[j + 1].word in HEAD_CHARS
            and len(t.word) <= 2
        ):  # 吸痰/v 机, 洗澡/v 椅, 防撞/v 柱: a verb before a one-character head is the name's first part
            parts.append(t)
        elif (
            not parts and (t.flag.startswith(("b", "a", "v")) or _MODIFIER.match(t.word)) and len(t.word) <= 2
        ):
            if j + 1 >= len(tokens) or not (_nounish(tokens[j + 1]) or tokens[j + 1].word in PERSON_WORDS):
                break
            if t.flag.startswith("v") and tokens[j + 1].word == "服务":
                return [t.word]  # 送餐/服务: the service is the verb before 服务
            if len(t.word) == 1 and not _MODIFIER.match(t.word) and len(tokens[j + 1].word) <= 2:
                parts.append(t)  # 足/浴盆, 冲/水箱, 洗/手盆: a one-character modifier is part of the name
            elif t.flag.startswith("b"):
                mods.append(t.word)  # 临时/救助: kept if the head is a service
            else:
                skipped = True  # 防/褥疮床垫, 来回/车费: what follows is one name, its head the thing
        else:
            break
        j += 1
    words = [p.word for p in parts]
    while len(words) > 1 and words[-1] in _MONEY_AFTER and _priced("".join(words[:-1])):
        words.pop()
    merged: list[str] = []
    for w, p in zip(words, parts, strict=False):
        if merged and len(w) == 1 and (w in HEAD_CHARS or w in GENERIC_PARTS or _single_head(p)):
            merged[-1] += w
        elif (
            merged
            and len(merged[-1]) == 1
            and not _MODIFIER.match(merged[-1])
            and not parts[0].flag.startswith("n")
        ):
            merged[-1] += w  # 足 + 浴盆 (not 桥/栏杆: a noun before a thing says where it is)
        else:
            merged.append(w)
    merged = [
        w
        for w in merged
        if not _MODIFIER.match(w)
        and not (len(w) == 1 and w in GENERIC_PARTS)
        and not (w in GENERIC_AREAS and len(merged) > 1)  # "篮球场/地面": the whole
    ]
    if j < len(tokens) and (tokens[j].word in PERSON_WORDS or tokens[j].word in ("的", "嘅")):
        return []  # "单亲妈妈", "残疾的儿子": a description of a person, not a thing
    if merged and mods and _SERVICE_HEAD.search(merged[-1]):
        merged = ["".join(mods) + merged[0], *merged[1:]]
    for k in range(len(merged) - 1):  # a compound the item lexicon knows (平板/电脑)
        if merged[k] + merged[k + 1] in _KNOWN:
            merged[k : k + 2] = [merged[k] + merged[k + 1]]
            break
    if len(merged) <= 1:
        return merged
    if merged[-1] == "服务":
        return [merged[-2]]  # 送餐/服务: the service is the word before
    if re.search(r"(?:场|室|园|堂|馆|中心)$", merged[-1]):
        return ["".join(merged)] if len("".join(merged)) <= 6 else [merged[-1]]  # a place keeps its kind
    if _SERVICE_HEAD.search(merged[-1]):
        whole = "".join(merged)
        return [whole] if len(whole) <= 6 else [merged[-1]]
    firsts = [p for p in parts if p.word in merged[:-1]]
    modifier_first = (
        merged[0] in PERSON_WORDS
        or re.match(r"^(?:孕妇|成人|儿童|婴儿|老人|长者|学生|病人|防|来回|公共|公交|村|小区)", merged[0])
        is not None
        or any(p.flag.startswith(("v", "b", "a")) and not p.flag.startswith("vn") for p in firsts)
    )
    if not as_list or skipped or (len(merged) == 2 and modifier_first):
        return [merged[-1]]  # whom or what for, or where (孕妇/奶粉, 防抖/餐具, 公交/站牌): the head
    if len(merged) == 2:  # two nouns, no conjunction: one name, or a list only when both are known things
        first, second = merged
        if second in _MONEY_AFTER:
            return [first + second]  # "交通补贴": a money word after what is no thing is the name's head
        if second in _GENERIC_HEADS or (second in _KNOWN and first not in _KNOWN):
            return [first + second] if len(first + second) <= 6 else [second]  # 生活/物资, 电动车/充电桩
        if first in _KNOWN and second in _KNOWN:
            return merged
        return [first] if first in _KNOWN or first[-1] in HEAD_CHARS else [second]  # 血压计/测血压
    return merged


def _priced(words: str) -> bool:
    """Whether `words` name a cost or a thing, so a money word after them is no part of the name ("交通费补贴" →
    交通费, "助听器补贴" → 助听器); what is no thing keeps it ("交通补贴", "生活补助")."""
    return words.endswith(("费", "金", "租", "钱")) or words in _KNOWN or words[-1] in HEAD_CHARS


# the one-character staples a household asks for, named side by side without a conjunction ("米油面" → 米, 油, 面)
STAPLES = "米油面盐糖"
_STAPLE_RUN = re.compile(rf"[{STAPLES}]{{2,4}}(?=$|[\s，,。！!？?]|俾|畀|给|同|和|嘅|的|过|送)")
# where the words of a thing the tagger cannot read end: a break, whom it is for, a money word, what it is for
_NAME_END = re.compile(
    r"[\u4e00-\u9fff]{2,4}?(?=$|[\s，,。！!？?]|俾|畀|给|同|和|嘅|的|喺|补助|补贴|资助|服务|上|用|返|做|去|啊|呀|啦|吧)"
)


def _fragment(word: str) -> bool:
    """A one-character piece the tagger cut from a word it cannot read (电/恼, 产/检/费 → 电, 检), not a thing."""
    return (
        len(word) == 1 and word not in HEAD_CHARS and word not in STAPLES and word not in "药衫被树桥墙门窗"
    )


def _phrase_at(text: str, at: int, *, as_list: bool = True) -> list[str]:
    """The noun phrase starting at character `at` (tagged on its own, so a word glued across `at` does not hide
    it)."""
    words = text[at : at + 12]
    tokens = tagged(words, hmm=False)
    phrase = noun_phrase(tokens, 0, as_list=as_list)
    if not phrase and tokens and tokens[0].flag == "x" and "\u4e00" <= words[0] <= "\u9fff":
        return noun_phrase(tagged(words), 0, as_list=as_list)  # 豉/油: a word only the guessing reads
    return phrase


# a request verb; 要/送/搞/做/整/开 only with a quantity or classifier after them ("要部雾化机", not "要做手术")
_REQUEST = re.compile(
    r"(?:(?:需|想|就)?要做(?=[\u4e00-\u9fff]{0,4}(?:治疗|训练|理疗|康复|复健|护理))|想要|想申请|申请|需要|想整|想装|加装|安装|想加|想换|换过|想买|买|想借|借|捐|缺|配|想学|学|戴|开返|组织|举办|开展|"
    rf"(?:(?:需|想|就)?要|送|搞|做|整|装|加|换|开|搵|找|起|建|(?:最好|想|希望)有)(?=\s*(?:[{_NUM}]{{0,3}}[{CLASSIFIERS}])))"
)
_SKIP = re.compile(
    rf"\s*(?:返|番|(?:就)?系(?=[{_NUM}]{{0,3}}[{CLASSIFIERS}]))?\s*(?:(?:加装|安装|装|买|配|换|整|搞)(?=[\u4e00-\u9fff]{{2}})|(?:交|缴|付)(?!通)(?=[\u4e00-\u9fff]{{1,4}}费))?\s*(?:{_QUANTITY.pattern}|[{_NUM}]{{0,3}}床(?=\S?(?:棉被|被|毯|席)))?\s*(?:新嘅|新|旧|二手)?\s*"
)
_AND = re.compile(rf"\s*(?:同埋|同|和|跟|及|、)\s*(?:{_QUANTITY.pattern})?\s*")


def governed(text: str) -> list[str]:
    """What the request verbs of `text` govern, with the things joined to it by 同/和 ("想申请一张棉胎同一对拖鞋"
    → 棉胎, 拖鞋; "想要张可以坐住冲凉嘅凳" → 凳; "想申请牙膏牙刷毛巾" → 牙膏, 牙刷, 毛巾)."""
    tokens = tagged(text)
    found: list[str] = []
    for m in _REQUEST.finditer(text):
        token = next(t for t in tokens if t.start <= m.start() < t.end)
        strong = (
            m.group() in ("申请", "想申请", "想要", "需要") or m.group()[-1] == "做"
        ) and token.start == m.start()
        verb = token.flag.startswith("v") and token.end == m.end()
        if not (strong or verb or (token.start == m.start() and text[m.end() : m.end() + 1] in CLASSIFIERS)):
            continue  # 学 of 大学/学校/考大学, 开 of 裂开: not a verb of its own
        skip = _SKIP.match(text, m.end())
        at = skip.end() if skip else m.end()
        again = re.match(r"过\s*(?:新嘅|新的|新)?\s*", text[at:])
        if again:  # "想要过新嘅被铺": the same thing again, named here; "想申请过个": named before
            at += again.end()
            if text[at : at + 1] in CLASSIFIERS or not (_phrase_at(text, at) or _staples(text, at)[0]):
                continue
        rel = described.DESCRIPTION.match(text[at:])  # never across a joiner ("米同埋冬天的衣服": 米)
        if rel and not _phrase_at(text, at):
            at += rel.end()  # "可以坐住冲凉嘅凳": a description before the thing
        for _ in range(8):
            staples, end = _staples(text, at)
            if staples:  # "想申请啲米油面", "米、油、盐": one-character things
                found += [w for w in staples if w not in found]
                joined = _AND.match(text, end) or _LISTED.match(text, end)
                if joined is None and _phrase_at(text, end):
                    at = end  # "米油面条": a longer name right after the staples
                    continue
                if joined is None:
                    break
                at = _after_and(text, joined.end())
                continue
            phrase = _phrase_at(text, at)
            counted = re.search(rf"[{CLASSIFIERS}]|过|新", text[m.end() : at]) is not None
            guessed = (
                not phrase
                and counted
                and not text[at - 1].isspace()
                and text[at : at + 1] not in "我你佢他她俾畀给都就又"
                and not _REQUEST.match(text, at)
            )
            if guessed and text[at] in STAPLES:
                phrase, guessed = [text[at]], False  # "一袋米一桶油": the staple (米/q to the tagger)
            if guessed:
                phrase = [
                    text[at]
                ]  # 过新嘅被/铺: a counted thing the tagger cannot read, read up to where it ends
            if phrase and (_fragment(phrase[-1]) or guessed):
                whole = _NAME_END.match(
                    text, at
                )  # "电饭郭", "电恼俾个仔": the words up to where the name ends
                phrase = [*phrase[:-1], whole.group()] if whole and phrase[-1] in whole.group() else []
                if guessed and (
                    re.search("[都到咗晒]", "".join(phrase)) or _NOT_THING.match("".join(phrase))
                ):
                    phrase = []
            if not phrase:
                break
            end = text.find(phrase[-1], at) + len(phrase[-1])
            tail = re.match(r"([\u4e00-\u9fff])(?:[\s，,。！!？?]|$)", text[end:])
            if (
                end >= len(phrase[-1])
                and tail
                and tail.group(1) not in "啊呀啦喇吖嘅咗先喎嘛呢吗了吧哦啰咯噃嘞喔做用食睇玩读坐瞓着戴"
            ):
                phrase[-1] += tail.group(1)  # "一键/通 ": the tagger split a word it does not know
                end += 1
            found += [w for w in phrase if w not in found]
            money = re.match(r"\s*(?:补助|补贴|资助|救济)", text[end:])
            end += money.end() if money else 0
            joined = _AND.match(text, end) or _LISTED.match(text, end) or described.JOINED.match(text, end)
            if joined is None or end < len(phrase[-1]):
                break
            at = _after_and(text, joined.end())
    return [w for w in found if not _MONEY_HELP.fullmatch(w)]


_KNOWN_RE = "|".join(sorted(map(re.escape, ITEMS), key=len, reverse=True))
# a list goes on after a pause when a one-character staple or a counted thing follows ("想要 米 油 面条", "仲有本字典")
_LISTED = re.compile(
    rf"\s*(?:(?:仲有|还有|仲要|再要|另外)\s*(?=[{_NUM}]{{0,3}}[{CLASSIFIERS}])|\s(?=[{STAPLES}](?:\s|$)|(?:{_KNOWN_RE})(?:\s|$)))"
)


def _after_and(text: str, at: int) -> int:
    """Where the next thing of a list starts: past an act done to it ("同埋装返条扶手") and its quantity."""
    skip = re.match(
        rf"(?:加装|安装|装|买|配|换|整|搞)(?:返|番)?(?=[{_NUM}]{{0,3}}[{CLASSIFIERS}]|[\u4e00-\u9fff]{{2}})",
        text[at:],
    )
    if not skip:
        return described.past(
            text, at, lambda t, k: _phrase_at(t, k) or _staples(t, k)[0]
        )  # 同埋冬天用嘅棉被
    quantity = re.match(rf"\s*(?:{_QUANTITY.pattern})?\s*", text[at + skip.end() :])
    return at + skip.end() + (quantity.end() if quantity else 0)


def _staples(text: str, at: int) -> tuple[list[str], int]:
    """One-character staples named side by side from `at`, with nothing, 、 or a space between them ("米油面",
    "米、油、", "米 油 面条" → 米, 油), and where they end; none when the run does not end a name (米粉, 油漆) or
    when the staple starts a longer word (面条)."""
    found: list[str] = []
    k = end = at
    while k < len(text) and text[k] in STAPLES:
        if any(text.startswith(w, k) for w in _KNOWN if len(w) > 1 and w[0] == text[k]):
            break  # 面条, 油烟机: a longer thing
        nxt = text[k + 1 : k + 2]
        if (
            nxt
            and nxt not in STAPLES
            and not re.match(_KNOWN_RE, text[k + 1 :])  # "米盐挂面": a known thing follows
            and not re.match(r"[\s、,，/]|俾|畀|给|同|和|嘅|的|过|送|都|$", text[k + 1 :])
        ):
            break  # 米粉, 油漆: a name of its own
        found.append(text[k])
        end = k + 1
        gap = re.match(r"[\s、,，/]*", text[end:])
        k = end + (gap.end() if gap else 0)
    listed = re.match(rf"\s*(?:[、,，/]|同|和|\s|[{STAPLES}])", text[end:])
    if not found or (len(found) == 1 and not listed):
        return [], at  # a lone staple ends no list; noun_phrase reads it
    return found, end


# help in money in general, no thing ("想申请资助")
_MONEY_HELP = re.compile(r"资助|补助|补贴|救济|经济援助|经济帮助|经济支持")


# a thing introduced by a classifier, up to the predicate that follows it or a part of it named after it
_CLASSIFIED = re.compile(
    rf"(?<![{_NUM}成])(?:嗰个|嗰条|[{CLASSIFIERS}]|啲)(?P<t>(?![啲嘅的个])[\u4e00-\u9fff]{{1,5}}?)"
    rf"(?=\s*(?:{PREDICATE.pattern}|[个啲条块张只](?:[\u4e00-\u9fff]{{1,3}}?){PREDICATE.pattern}))"
)


def classified(text: str) -> list[str]:
    """Things named by a classifier and then talked about ("个镬生晒锈", "村头个水闸锈死咗", "张棉台薄到透光",
    "架轮倚个辘甩咗" → 轮倚)."""
    whole = tagged(text)
    found: list[tuple[int, str]] = []
    for m in _CLASSIFIED.finditer(text):
        token = next(t for t in whole if t.start <= m.start() < t.end)
        if len(token.word) > 1 and token.flag != "nr" and token.end > m.start("t"):
            continue  # the classifier's character starts a word (对讲机); glued to the word before it is still one
            # ("后面条河涌": 面条/河涌)
        at, named = m.start("t"), m.group("t")
        cut = next((t for t in whole if at <= t.start < m.end("t") < t.end), None)
        if cut and text[m.end("t")] in "个啲条块张只" and PREDICATE.match(text, cut.end):
            named = text[
                at : cut.end
            ]  # "啲防滑条甩晒": the name the sentence's own words end with, not 防滑/条…
        for words in re.split(r"(同埋|同|和|、)", named):  # "啲碗同筷子都崩晒": two things
            if not re.fullmatch(r"同埋|同|和|、", words):
                found += [(m.end(), w) for w in _classified_thing(words, whole, at)]
            at += len(words)
    # a whole named before a generic part the predicate is said of ("电箱个门冇咗", "单车棚个顶俾风吹走"): the whole
    for m in re.finditer(rf"(?:个|啲|嘅)[{''.join(sorted(GENERIC_PARTS))}](?={PREDICATE.pattern})", text):
        before = next((t for t in whole if t.end == m.start()), None)
        prior = next((t for t in whole if before is not None and t.end == before.start), None)
        if (
            before is not None
            and prior is not None
            and len(before.word) == 1
            and before.word in HEAD_CHARS | {"箱"}
        ):
            if _nounish(prior) or prior.flag == "vn":  # 变电/箱个门: a head the tagger took for a classifier
                before = Tagged(prior.word + before.word, "n", prior.start, before.end)
        if before is not None and _nounish(before) and len(before.word) >= 2:
            found.append((m.start(), before.word))
    # a whole followed by a part with its own name ("河边条步道啲地砖翘晒起", "红绿灯个黄灯唔着"): the part
    parts = {w for _, w in found}
    wholes = {
        w
        for end, w in found
        if re.match(r"\s*[个啲条块张只]", text[end:])
        and any(text[end:].lstrip()[1:].startswith(p) for p in parts - {w})
    }
    return list(dict.fromkeys(w for _, w in found if w not in wholes))


def _classified_thing(words: str, whole: tuple[Tagged, ...], at: int) -> list[str]:
    if not words or re.match(rf"[{_NUM}]", words) or words in PERSON_WORDS or words in _SHORT_KIN:
        return []
    if len(words) >= 2 and PREDICATE.match(words) and re.match(r"[\u4e00-\u9fff]", words):
        return []  # "电箱漏电": 箱 ends a word, what follows is what is wrong with it
    inside = tuple(t for t in whole if at <= t.start and t.end <= at + len(words))
    # the sentence's own words when they fall inside the span (书/湿), else the span tagged alone (棉台)
    tokens = inside if sum(len(t.word) for t in inside) == len(words) else tagged(words, hmm=False)
    if _NOT_THING.match(tokens[0].word) or tokens[0].word in PERSON_WORDS or tokens[0].word in _SHORT_KIN:
        return []  # "上个月车祸", "个孙开学", "啲车日晒": a time, a person or no thing
    if len(words) == 1:
        alone = any(t.start == at and t.word == words for t in whole)
        if words in GENERIC_PARTS or not (words in HEAD_CHARS or (alone and _nounish(tokens[0]))):
            return []
        return [words]
    phrase = noun_phrase(tokens, 0, as_list=False)
    if phrase and words.endswith(phrase[-1]):
        before = words[: len(words) - len(phrase[-1])]
        if before and any(
            not t.flag.startswith(("n", "s", "f", "b", "a", "q")) for t in tagged(before, hmm=False)
        ):
            return []  # "啲水有铁锈": a clause, not a name
        return phrase
    last = tokens[-1]
    if (
        len(words) <= 3
        and not any(t.flag.startswith(("d", "p", "r", "u", "y", "c", "m")) for t in tokens)
        and words[-1] in HEAD_CHARS
        and not _NOT_THING.match(last.word)
    ):
        return [words]  # words the tagger cannot read (棉台): the span itself
    return []


_HELPER = re.compile(
    r"(?:帮|陪|上门|定期|(?<=想|要)有人|(?<=希望)有人|(?<=想|要)(?:搵|揾|找|请)(?:个)?人)(?:手|忙|下)?\s*"
)
_NOT_SERVICE = re.compile(
    r"^(?:申请|问|问下|睇下|整|整返|搞|做|去|返|来|嚟|讲|话|谂|揾|买|陪|上门|定期|申|请|手|忙|下|吓|有|你|你哋|"
    r"你们|手续|登记|理|管|理下|管下|处理|跟进|解决)$|返$|^帮"
)
_REPAIR = frozenset(
    ("补", "整", "修", "换", "装", "封", "通", "清", "维修", "修理", "更换", "安装", "整返", "换返")
)
# 帮 + whom + a request verb: the request is made for them ("帮隔离屋陈伯申请", "帮阿婆买")
_FOR_WHOM = re.compile(r"[^\s，,。]{1,6}?(?:申请|想要|报名|买|揾|搵)")
_PERSON_SLOT = re.compile(
    r"^(?:佢|我|他|她|佢哋|我哋|我们|他们|她们|老人家|老人|屋企|家里|\s|每日|每天|日日|天天|每个星期|每周|每星期|经常|定时|得闲|有空|得空|有时间|嚟|来|过嚟|过来)$"
)


def services(text: str) -> list[str]:
    """A service a helper is asked to do: 帮/陪/上门 + the person + a verb and its object ("帮佢倒垃圾" → 倒垃圾,
    "陪佢饮早茶" → 饮早茶, "帮我读信同填表" → 读信, 填表, "上门家访" → 家访)."""
    tokens = tagged(text)
    starts = {t.start: k for k, t in enumerate(tokens)}
    found: list[str] = []
    for m in _HELPER.finditer(text):
        k = starts.get(m.end())
        whom = _FOR_WHOM.match(text, m.end())
        asked = 2 if whom and whom.group().endswith(("申请", "想要", "报名")) else 1
        if k is None or (
            whom
            and not any(
                t.flag.startswith("v")
                and t.start >= m.end()
                and t.end == whom.end() - asked
                and len(t.word) > 1
                for t in tokens
            )
        ):
            continue  # "帮隔离屋陈伯申请个煤气炉": 帮 says whom the request is for, no service (not "帮佢填表申请…")
        while k < len(tokens) and (
            _PERSON_SLOT.match(tokens[k].word)
            or tokens[k].word in PERSON_WORDS
            or tokens[k].word in ("定期",)
        ):
            k += 1
        for _ in range(3):
            if k >= len(tokens):
                break
            t = tokens[k]
            if t.word in _REPAIR or t.word.removesuffix("返") in _REPAIR:
                # "帮手补屋顶", "帮佢换光管", "帮手封返条渠": a repair gives the thing it is done to, not a service
                skip = _SKIP.match(text, t.end)
                found += [w for w in _phrase_at(text, skip.end() if skip else t.end) if w not in found]
                break
            if _NOT_SERVICE.search(t.word) or not t.flag.startswith(("v", "n", "j")) or len(t.word) > 4:
                break
            if t.flag.startswith("n") and len(t.word) > 2 and t.word not in ("剪指甲",):
                break  # a thing, not a service
            phrase, nxt = t.word, tokens[k + 1] if k + 1 < len(tokens) else None
            if nxt is not None and (_QUANTITY.fullmatch(nxt.word) or nxt.word in ("的", "嘅")):
                break  # an act on a thing named after a classifier; "残疾的弟弟": a description
            if (
                (t.flag.startswith("v") or len(t.word) == 1)
                and len(t.word) <= 2
                and nxt is not None
                and nxt.flag.startswith(("n", "vn", "zg", "g"))
                and not nxt.flag.startswith(("ns", "nr"))
                and len(nxt.word) <= 3
                and (
                    not _NOT_THING.match(nxt.word)
                    or (len(t.word) == 1 and len(nxt.word) == 1 and nxt.word not in "人我你佢他她嘢日年月")
                )  # 搬/屋, 煮/饭, 洗/衫: a one-character verb and object
                and len(t.word + nxt.word) <= 5
                and not (len(t.word) == 2 and len(nxt.word) > 2)
            ):
                phrase += nxt.word  # 倒/垃圾, 搬/煤气, 饮/早茶, 介绍/工作
                k += 1
            if len(phrase) < 2 or phrase in PERSON_WORDS:
                break
            found.append(phrase)
            k += 1
            if k + 1 < len(tokens) and tokens[k].word in ("同", "和", "同埋", "、", "或者"):
                k += 1  # "读信同填表": a second service
                continue
            break
    return found


_THERE = re.compile(
    rf"(?:好多|成日有|有好多|周围都系|周围都是|有(?:[{_NUM}]{{0,3}}[个只架辆部窦]|一窦|啲|一啲)(?:[^\s，,。嘅的]{{1,4}}(?:嘅|的))?)"
    r"(?P<t>[\u4e00-\u9fff]{1,4}?)(?=$|[\s，,。！!？?]|(?:周围|乱|飞|爬|出|喺|咬|叮|成日|成群|都|又|好|仲|啲|惊|会|害|停|摆|占|阻))|"
    # "河边蚊多到…": what is so many that it is the trouble, after where it is
    r"(?:^|(?<=[\s，,。！!？?边度])|(?<=附近|周围|晚黑|夜晚))(?P<m>[\u4e00-\u9fff]{1,3}?)(?:多到|多得|多过|多(?=到|得|死))"
)


_RUBBISH = re.compile(r"^(?:垃圾|杂物|杂草|淤泥|落叶|树叶|泥沙|积水|污水|烂泥|泥头)")


def teeming(text: str) -> list[str]:
    """In a project, what is there or teems where people are (pests, a wasp nest, rubbish): "菜市场好多老鼠" → 老鼠,
    "垃圾站附近好多曱甴" → 曱甴, "棵树有个好大嘅黄蜂窦" → 黄蜂窦; not a person (好多老人家)."""
    found: list[str] = []
    for m in _THERE.finditer(text):
        word = m.group("t") or m.group("m")
        if m.group("m") and len(word) > 1:  # "河边蚊多到": the thing after where it is
            word = tagged(word, hmm=False)[-1].word
        first = tagged(word, hmm=False)[0]
        if len(word) == 1 and not any(t.word == word and t.flag.startswith("n") for t in tagged(text)):
            continue  # a one-character thing only as a noun of its own in the sentence (有蛇爬落嚟, 蚊多到)
        if (
            _NOT_THING.match(word)
            or _RUBBISH.match(word)  # rubbish is the item only when nothing else is named (the guide)
            or word in PERSON_WORDS
            or first.word in PERSON_WORDS
            or _NOT_THING.match(first.word)
            or first.flag.startswith(("v", "a", "d", "m", "r", "p", "c"))
        ):
            continue
        found.append(word)
    return found


_PLACE_END = re.compile(
    r"(?:场|室|站|园|馆|中心|公园|村道|巷|街|村|小区|社区|楼|桥|边|门口|市场|空地|后山|山|附近|周围|旁边|对面|一带|里|里面|入面|苑|屋邨|大厦|学校)$"
)


def pests(text: str) -> list[str]:
    """What teems in a project (`teeming`), unless the project is about an object named before it ("绿化带积晒水
    好多蚊": a pest beside a named object is no item; "菜市场好多老鼠": a place, so the pest)."""
    found = teeming(text)
    if not found:
        return found
    said = topics(
        text
    ) or [  # the words before the first clause's predicate, when the tagger reads no noun there
        m.group("t")
        for m in [
            re.match(
                rf"^(?:我哋|我们|我地)?(?P<t>[\u4e00-\u9fff]{{2,7}}?)(?={PREDICATE.pattern})", text.strip()
            )
        ]
        if m
    ]
    topic = [t for t in said if not _PLACE_END.search(t)]
    return [] if topic and not any(f in topic[0] for f in found) else found


def topics(text: str) -> list[str]:
    """What the clauses of a project are about: the head of the noun phrase that opens a clause, right before its
    predicate ("天台铁闸俾人锁死咗" → 铁闸, "排洪渠积满淤泥" → 排洪渠, "公交站牌俾车撞歪咗" → 站牌)."""
    found: list[str] = []
    for clause in re.split(r"[\s，,。！!？?；;]+", text.strip())[:1]:
        m = re.match(r"^(?:我哋|我们|我地)?(?P<t>[\u4e00-\u9fff]{2,7}?)(?=" + PREDICATE.pattern + ")", clause)
        if not m or re.match(rf"[{_NUM}]*[{CLASSIFIERS}]", m.group("t")):
            continue
        rest = clause[m.end() :]
        lacks = re.match(r"(?:冇|没有|无|没)(.)", rest)
        missing = rest[len(lacks.group(0)) - 1 :] if lacks else ""
        if lacks and (
            lacks.group(1) not in GENERIC_PARTS
            and (
                any(missing.startswith(w) for w in ITEMS + tuple(HEAD_CHARS))
                or any(t.flag == "n" and len(t.word) >= 2 for t in tagged(missing[:6], hmm=False)[:1])
            )
        ):
            continue  # "楼梯冇扶手", "球场冇灯": the place where a thing is missing
        at = text.find(clause) + m.start("t")
        inside = tuple(t for t in tagged(text) if at <= t.start and t.end <= at + len(m.group("t")))
        # the sentence's own words when they cover the subject (盲道, which the part alone cuts as 盲/道)
        covered = sum(len(t.word) for t in inside) == len(m.group("t"))
        tokens = inside if covered else tagged(m.group("t"), hmm=False)
        # the places in front (天台, 小区) left, the noun phrase that reaches the predicate read
        start = next((k for k in range(len(tokens)) if not tokens[k].flag.startswith(("s", "f", "ns"))), 0)
        phrase = noun_phrase(tokens, start, as_list=False)
        if not phrase or not m.group("t").endswith(phrase[-1]):
            continue
        head = re.sub(
            rf"^(?:公交|公共|村(?=..)|[{CLASSIFIERS}](?=.$))", "", phrase[-1]
        )  # where or whose, before the thing (公交站牌)
        if (
            (len(head) >= 2 or head in HEAD_CHARS)
            and not _NOT_THING.match(head)
            and head not in PERSON_WORDS
            and not PREDICATE.search(head)
        ):
            found.append(head)
    return found
