"""Things a request names that the other readings of `dialogue.slots` miss, and what they read in their place.

- In a project, what teems where people are, said before how many there are ("菜市场老鼠好多，希望可以灭鼠" → 老鼠,
  "小区蚊子特别多 想请人嚟消杀" → 蚊子, "村里面流浪狗好多" → 流浪狗): the pest is the item, not what is to be done
  to it, as for "好多老鼠" (`heads.teeming`); rubbish named with rubbish is two items ("泥头同垃圾"); a second thing
  a later clause says is broken too ("篮球架生锈了，篮板也裂了"); a part named from the whole or a known part of a
  facility is the item alone ("路灯灯柱" → 灯柱, "公厕门锁" → 门锁); who cannot reach a place is no item
  ("轮椅上唔到").
- In a wish, things named side by side without a conjunction ("秋衣秋裤", "奶瓶奶嘴"), after a space ("想要尿片
  湿纸巾"), after 或者/同/仲有 wherever the first thing is named ("过新嘅被铺同床单", "仲有本英文字典"), lacking one
  after another ("冇床单冇枕头"); what a thing is for ("缝纫机练习") and its age ("旧凳") are no part of it.
- A class, lesson or talk is read by its whole name ("报个电脑班", "搞个四点半课堂"); a word of manner ("容易") is no
  thing; a conjunction or a lone first character the model took along is dropped ("同书台", "台" beside 台灯).

Pure and deterministic.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

from bot.conversation.nlu.beneficiary import PERSON_WORDS
from bot.conversation.nlu.heads import _NOT_THING, _RUBBISH, Tagged, classified, governed, tagged
from bot.conversation.nlu.normalize import ITEMS, find_town

# "X好多", "X特别多", "X多到": how many there are, said after the thing, at the end of a clause
_MANY = re.compile(
    r"(?:好|特别|非常|太|越嚟越|越来越|真系|真是|实在)多(?:到|得)?(?=$|[\s，,。！!？?；;]|咗|了|啊|呀|喇|啦|嘅)"
)
# what is done to a pest: a treatment, not the thing ("灭鼠", "消杀", "捉蛇")
_TREATMENT = re.compile(r"^(?:灭|消杀|消毒|杀|除|捉|驱|赶|清|喷|打)")
_PLACE = re.compile(r"(?:场|站|园|馆|中心|公园|巷|街|村|小区|社区|楼|桥|市场|路|度)$")


def teeming_after(text: str) -> list[str]:
    """What the text says there are many of, named before how many ("老鼠好多" → 老鼠); not a person, a place, rubbish
    (the item only when nothing else is named) or a vehicle."""
    found: list[str] = []
    tokens = tagged(text)
    for m in _MANY.finditer(text):
        before = [t for t in tokens if t.end <= m.start()]
        if not before or before[-1].end != m.start():
            continue
        word = before[-1]
        if (
            not word.flag.startswith(("n", "z"))  # jieba reads 曱甴 as a status word
            or word.flag.startswith(("ns", "nr"))
            or len(word.word) < 2
            or _NOT_THING.match(word.word)
            or _RUBBISH.match(word.word)
            or _PLACE.search(word.word)
            or word.word in PERSON_WORDS
            or word.word.endswith(("车", "人"))
        ):
            continue
        found.append(word.word)
    return found


def _thing_word(t: Tagged) -> bool:
    """A token that can name a thing by itself: a noun of two characters or more, not a place, a person, a town."""
    return (
        t.flag.startswith("n")
        and not t.flag.startswith(("ns", "nr"))
        and len(t.word) >= 2
        and re.fullmatch(r"[\u4e00-\u9fff]+", t.word) is not None
        and not _NOT_THING.match(t.word)
        and t.word not in PERSON_WORDS
        and find_town(t.word) is None
    )


_REQUESTED = re.compile(r"(?:想要|需要|想申请|申请|想买|要|买|缺)$")
_LIST_END = re.compile(r"^(?:$|[\s，,。！!？?；;]|同|和|跟|及|、|各|俾|畀|给)")
_SPACED_END = re.compile(r"^(?:$|[\s，,。！!？?；;]|同|和|跟|及|、)")


def parallel(text: str) -> list[str]:
    """Two things named side by side without a conjunction: nouns of one length sharing their first character
    ("秋衣秋裤", "奶瓶奶嘴"), the first right after a request verb; things after a space ("想要尿片 湿纸巾")."""
    tokens = tagged(text)
    found: list[str] = []
    for k in range(1, len(tokens) - 1):
        a, b = tokens[k], tokens[k + 1]
        if (
            _REQUESTED.search(tokens[k - 1].word)
            and _thing_word(a)
            and _thing_word(b)
            and len(a.word) == len(b.word)
            and a.word[0] == b.word[0]
            and _LIST_END.match(text[b.end :])
        ):
            found += [a.word, b.word]
    return found


def _spaced(text: str, found: list[str]) -> list[str]:
    """Things listed after a thing asked for with a space between them ("想要尿片 湿纸巾 厚街" → 湿纸巾)."""
    tokens = tagged(text)
    more: list[str] = []
    for value in found:
        end = text.find(value) + len(value)
        k = next((i for i, t in enumerate(tokens) if t.start == end), None)
        while (
            k is not None and k + 1 < len(tokens) and tokens[k].word.isspace() and _thing_word(tokens[k + 1])
        ):
            nxt = tokens[k + 1]
            if not _SPACED_END.match(text[nxt.end :]):
                break
            more.append(nxt.word)
            k += 2
    return more


_CONJUNCTION = re.compile(r"^(?:同埋|同|和|跟|及)(?=[\u4e00-\u9fff]{2})")


def model_values(text: str, values: Iterable[str]) -> list[str]:
    """The model's items found in `text`, without a conjunction it took along ("同书台" → 书台) or a character that is
    only the start of another of its items ("台" beside 台灯)."""
    kept = [_CONJUNCTION.sub("", v) for v in values if v and v in text]
    return [v for v in kept if not (len(v) == 1 and any(w.startswith(v) and w != v for w in kept))]


# rubbish named with rubbish ("泥头同垃圾"): both are the items (the guide: rubbish when nothing else is named)
_RUBBISH_PAIR = re.compile(
    r"(?P<a>垃圾|杂物|杂草|淤泥|落叶|树叶|泥沙|烂泥|泥头|建筑垃圾)(?:同埋|同|和|及|、|仲有)"
    r"(?P<b>垃圾|杂物|杂草|淤泥|落叶|树叶|泥沙|烂泥|泥头|建筑垃圾)"
)
# a second clause about another thing, said to be broken too ("篮球架生锈了，篮板也裂了")
_TOO = re.compile(
    r"(?:^|(?<=[\s，,。！!？?；;]))(?P<t>[\u4e00-\u9fff]{2,4}?)(?:也|又|亦)(?:已经|全部|成个)?"
    r"(?=烂|坏|裂|断|甩|穿|崩|漏|爆|塞|锈|生锈|松|冧|塌|歪|凹|翘|唔着|不亮|唔亮|冇晒|掉)"
)


# what a project's first clause says is in a place ("河涌啲水黑过墨", "山边斜坡啲泥成日冲落马路")
_CONTENT = re.compile(
    r"^(?:我哋|我们|我地)?(?P<t>[\u4e00-\u9fff]{2,6}?)啲(?:水|泥|泥沙|沙|污水)(?![\u4e00-\u9fff]{0,1}费)"
)


def _also_broken(text: str, found: list[str]) -> list[str]:
    """Things a later clause says are broken too, beside a thing already read."""
    more: list[str] = []
    for m in _TOO.finditer(text):
        words = tagged(m.group("t"), hmm=False)
        if m.start() > 0 and len(words) == 1 and _thing_word(words[0]) and not _PLACE.search(words[0].word):
            more.append(words[0].word)
    return more if found else []


# what a thing is for, after its name ("缝纫机练习" → 缝纫机); an old or new one is the same thing ("旧凳" → 凳)
_FOR_USE = re.compile(r"(?:练习|学习|使用|用)$")
_AGE = re.compile(r"^(?:旧|新)(?=.)")
# an alternative offered after a thing asked for ("电暖炉或者暖水袋都得")
_OR = re.compile(
    r"\s*(?:或者|或|定系|还是|同埋|同|和|跟|及|、|\s仲有|\s还有)\s*"
    r"(?:[一两二三四五六七八九十几\d]{0,2}[个张部台把架只件套对双盏条本])?\s*(?:新嘅|新的|新)?"
    r"(?:英文|中文|英汉|塑料|胶|大号|细码|大码)?"
)
# what is missing, named again and again ("冇床单冇枕头")
_LACKS = re.compile(
    r"(?:冇|没有)(?P<a>[\u4e00-\u9fff]{1,4}?)(?:冇|没有)(?P<b>[\u4e00-\u9fff]{1,4}?)(?=$|[\s，,。！!？?；;]|用|瞓|盖)"
)
_STAPLES = frozenset("米油面盐糖被")
# whether anyone gives or lends a thing ("有冇拖鞋派", "有冇轮椅借")
_ANY_GIVEN = re.compile(r"有冇(?P<t>[\u4e00-\u9fff]{1,4}?)(?:派|送|借|申请|领|攞|捐)")
# rubbish dumped is the item (dev 4: 偷倒[泥头])
_DUMPED = re.compile(r"(?:偷倒|乱倒|乱丢|偷偷倒|倒晒|倒咗)(?P<r>垃圾|泥头|建筑垃圾|杂物|余泥)")
# a thing a place is for, in a project: who cannot get there ("轮椅上唔到"), not the item
_CANNOT_REACH = re.compile(r"^\s*(?:上|入|过|行|推)(?:唔|不)(?:到|去|了|入)")


def _one_thing(words: str) -> bool:
    tokens = tagged(words, hmm=False)
    return len(tokens) == 1 and _thing_word(tokens[0])


def _nouns(words: str) -> bool:
    """`words` are nouns only, of two characters or more together ("衣/车", "电/暖炉"), no person or place."""
    tokens = tagged(words, hmm=False)
    return (
        len(words) >= 2
        and all(t.flag.startswith("n") and not t.flag.startswith(("ns", "nr")) for t in tokens)
        and _thing_word(Tagged(words, "n", 0, len(words)))
    )


def _cleaned(text: str, value: str, *, wish: bool) -> str:
    """`value` without what a thing is for, its age, or (in a project) the whole before a part named from it."""
    unable = re.match(r"^(?:不起|唔起|不到|唔到)(?=[\u4e00-\u9fff]{2})", value)
    if unable:
        return value[unable.end() :]  # "买不起校服": what cannot be bought, not "不起校服"
    use = _FOR_USE.search(value)
    if use and use.start() >= 2 and _nouns(value[: use.start()]):
        return value[: use.start()]
    age = _AGE.match(value)
    if age and (value[1:] in ITEMS or len(value) == 2):
        return value[1:]
    words = [t.word for t in tagged(value, hmm=False)]
    if not wish and len(words) == 2 and all(len(w) >= 2 for w in words) and _one_thing(words[0]):
        if words[1] in ITEMS or (words[0] in ITEMS and set(words[1]) & set(words[0])):
            # "路灯灯柱" → 灯柱, "公厕门锁" → 门锁: a part with its own name is the item alone (dev 7's header)
            return words[1]
    return value


def _no_thing(text: str, value: str, *, wish: bool) -> bool:
    """A value that is no thing: a word of manner ("容易"), or in a project who cannot reach the place."""
    tokens = tagged(value, hmm=False)
    if len(tokens) == 1 and tokens[0].flag in ("a", "ad", "d", "ag"):
        return True
    return not wish and _CANNOT_REACH.match(text[text.find(value) + len(value) :]) is not None


def _more(text: str, found: list[str]) -> list[str]:
    """Alternatives offered after a thing asked for, and what is missing named one after another."""
    more: list[str] = []
    for end in (m.end() for v in found for m in re.finditer(re.escape(v), text)):
        alt = _OR.match(text, end)
        if alt and alt.end() > end:
            tokens = [t for t in tagged(text) if t.start >= alt.end()]
            run = "".join(t.word for t in itertools.takewhile(lambda t: t.flag.startswith("n"), tokens))
            if run and _nouns(run):
                more.append(run)
    for m in _LACKS.finditer(text):
        more += [w for w in (m.group("a"), m.group("b")) if _one_thing(w) or w in _STAPLES]
    for m in _ANY_GIVEN.finditer(text):  # "有冇拖鞋派": what the resident asks whether anyone gives
        if _nouns(m.group("t")) or m.group("t") in _STAPLES:
            more.append(m.group("t"))
    return more


# a class, a lesson or a talk to be set up or joined: the whole name ("报个电脑班" → 电脑班, "搞个四点半课堂")
_COURSE = re.compile(
    r"(?:搞|办|开|报|举办|组织|想有|要有|参加)(?:[一两]?个)?"
    r"(?P<s>(?![个啲])[\u4e00-\u9fff]{1,6}?(?:课堂|培训班|兴趣班|班|讲座))(?=$|[\s，,。！!？?]|俾|给|畀|嘅|的|学|教|照)"
)


def _courses(text: str, found: list[str]) -> list[str]:
    """`found` with the class it names inside a class's whole name, or the class when nothing is found."""
    courses = [m.group("s") for m in _COURSE.finditer(text)]
    if not courses:
        return found
    kept = [next((c for c in courses if v in c and v != c), v) for v in found]
    return list(dict.fromkeys(kept or courses))


_LEARN = frozenset(("学", "想学", "要学", "学下", "学用", "想学用", "学识"))


def skills(text: str) -> list[str]:
    """What the resident wants to learn ("想学按摩", "冇机会学手语", "想学用智能手机"): the skill or the thing, a wish's
    item as the dev sets mark it."""
    tokens = tagged(text)
    found: list[str] = []
    for k, t in enumerate(tokens[:-1]):
        nxt = tokens[k + 1]
        if (
            t.word in _LEARN
            and nxt.flag.startswith(("n", "v", "l"))
            and not nxt.flag.startswith(("nr", "ns"))
        ):
            if len(nxt.word) >= 2 and not _NOT_THING.match(nxt.word) and nxt.word not in PERSON_WORDS:
                found.append(nxt.word)
    return found


# a thing said to be broken ("风扇坏咗"), and a request for another thing after it that does not replace it (想要, not 换)
_BROKEN = re.compile(
    r"^\s*(?:又|都|已经|成日|经常|好耐)?(?:(?:坏|烂|爆|断|冇用|冇电|漏气|漏电)(?:咗|晒|了|埋|掉)|"
    r"[\u4e00-\u9fff]{0,3}(?:唔敢用|用唔到|用唔得|唔够用|不够用|唔用得))"
)
_NEW_REQUEST = re.compile(
    r"(?:想要|需要|想申请|申请|想买|买|要|装|加装|安装)\s*(?:系|就系|係|是)?\s*(?:[一两二三四五六七八九十几\d]{0,2}[个部台张把架只件套盒包粒支对双条袋罐瓶樽])?"
)


def _instead(text: str, found: list[str]) -> list[str]:
    """In a wish, a broken thing beside a different thing asked for in its place ("风扇坏咗 想要台空调都好" → 空调):
    only the one asked for; a thing asked for again, or one sharing a character with it (拖孩/拖鞋), or a replacement
    (换), keeps both. Likewise a job sought beside a thing asked for."""
    # a broken thing of one kind with the thing asked for ("煤气炉漏气唔敢用 想要个电磁炉"): the one asked for
    for g in governed(text):
        same = [
            v for v in found if v != g and set(v) & set(g) and _BROKEN.match(text[text.find(v) + len(v) :])
        ]
        if g not in found and len(same) == 1 and text.find(same[0]) < text.find(g) and "换" not in text:
            found = [g if v == same[0] else v for v in found]
    if len(found) < 2:
        return found
    asked = [
        v
        for v in found
        if any(m.end() == text.find(v) for m in _NEW_REQUEST.finditer(text)) and "换" not in text
    ]
    dropped = [
        v
        for v in found
        if v not in asked
        and text.count(v) == 1
        and _BROKEN.match(text[text.find(v) + len(v) :])
        and any(text.find(a) > text.find(v) and not set(a) & set(v) for a in asked)
    ]
    # a job sought beside a thing asked for ("搵份手工返屋企做 想要部衣车"): the thing; a job alone stays (想搵份工)
    dropped += [
        v for v in found if v not in asked and re.search(f"(?:搵|揾|找)份{re.escape(v)}", text) and asked
    ]
    return [v for v in found if v not in dropped] if dropped and len(dropped) < len(found) else found


_BESIDE = re.compile(r"(?:边|旁边|侧边|底|附近)(?:冇|没有|要|想)")
_BESIDE_END = re.compile(r"(?:边|旁边|侧边|底|附近)$")
_HAZARD = re.compile(r"积水|污水|水浸|浸水")
# a service asked for by name ("想有助浴服务", "希望有上门理发服务")
_SERVICE = re.compile(
    r"(?:想有|希望有|想要|需要|要有|申请)(?:个|啲|一个)?(?:上门)?(?P<s>[\u4e00-\u9fff]{2,4}?)服务"
)


def read(text: str, found: list[str], *, wish: bool) -> list[str]:
    """`found` (the items `dialogue.slots` read), with what it misses in `text`."""
    kept = [v for v in (_cleaned(text, v, wish=wish) for v in found) if not _no_thing(text, v, wish=wish)]
    found = _courses(text, kept if kept else found)
    found = [*found, *(m for m in _more(text, found) if not any(m in v or v in m for v in found))]
    service = _SERVICE.search(text)
    if wish and service and service.group("s") not in found and not governed(text):
        found = [service.group("s")]  # the service asked for by name, not a thing the story names
    if wish:
        learnt = skills(text)
        if learnt and all(_NOT_THING.match(v) for v in found):  # "想学手语 有冇免费班": not 免费
            found = learnt
        more = [*parallel(text), *_spaced(text, found)]
        found = _instead(text, found)
        return sorted(
            dict.fromkeys([*found, *(m for m in more if not any(m in v for v in found))]), key=text.find
        )
    if len(found) > 1:  # "地下通道积水": the object that needs work, not the hazard (the guide)
        found = [v for v in found if not _HAZARD.fullmatch(v)] or found
    if len(found) > 1:  # "围墙边冇防护网": a thing that says where another is missing is no item
        found = [
            v for v in found if not _BESIDE.match(text, text.find(v) + len(_BESIDE_END.sub("", v)))
        ] or found
    found = _instead(text, found)  # "旧电话亭烂咗 想拆咗装个快递柜": what is to be put in its place
    content = _CONTENT.match(text.strip())
    if content and not found:  # "河涌啲水黑过墨": the place the water or mud is in
        words = [t for t in tagged(content.group("t"), hmm=False) if _thing_word(t)]
        found = [words[-1].word] if words else found
    dumped = _DUMPED.search(text)
    if dumped and not found:
        found = [dumped.group("r")]
    pair = _RUBBISH_PAIR.search(text)
    if pair and any(v in (pair.group("a"), pair.group("b")) for v in found):
        found = [*found, *(w for w in (pair.group("a"), pair.group("b")) if w not in found)]
    found = [*found, *(w for w in _also_broken(text, found) if not any(w in v or v in w for v in found))]
    # a second known thing a classifier introduces with its own predicate ("健身器材生锈 有个扭腰器转都转唔郁"): two
    # things, even when they share a character
    found = [
        *found,
        *(w for w in classified(text) if w in ITEMS and found and not any(w in v or v in w for v in found)),
    ]
    found = sorted(found, key=lambda v: text.find(v) if v in text else len(text))
    many = teeming_after(text)
    if many:
        at = text.find(many[0])
        kept = [
            v
            for v in found
            if v in ITEMS or not (text.find(v) > at and _TREATMENT.match(v)) and not (set(v) & set(many[0]))
        ]
        return list(dict.fromkeys([*kept, *many])) if kept != found or not found else found
    return found
