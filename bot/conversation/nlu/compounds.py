"""A thing's own compound name, where the other readings of `dialogue.slots` keep only its head or its whole.

The annotation guide drops a modifier when the head alone still names the same kind of thing, and keeps a compound
that is the thing's own name (the dev 7 header: 塑料[凳], 大号[尿片], 英汉[词典] against [冲凉凳], [电热毯], [保暖内衣]).
The modifiers that are dropped come from a few closed classes — what a thing is made of, its size, colour or
language, whom it is for, its brand, its age or condition, how it is powered or worked, what it guards against, where it
is; any other word that opens the noun phrase in front of the head is part of the name:

- after a classifier or a request verb, a word of two characters from none of those classes, and not itself one of
  the things read, before the thing read is the name's first part ("想要部读屏手机" → 读屏手机; not "一套防风外套":
  防 guards against; not "个定位手表": what tracks or alerts is a modifier, as dev 4 and dev 6 drop 防走失, 定位);
- a known thing followed by a noun of its own ending like a thing's name (机, 架, 箱 …) that names no thing apart and
  shares nothing with it, before what is said of them, is one name ("热水器外机漏水" → 热水器外机);
- a part with its own name a fault is said of is the item, not the thing it belongs to ("轮椅个刹车冇咗用" → 刹车);
- paying a fee is the fee ("交话费" → 话费);
- what a known thing guards against is a modifier ("防走失手环" → 手环);
- several things taken as one are several: staples side by side ("油面"), things counted one after the other
  ("米两包油"), two of a pair ("秋衣秋裤"); a verb glued to a known thing before 唔 is no part of it ("铁闸锁唔到");
- a conjunction the tagger glued to the first character of the next thing gives that character back ("同校/车费" →
  校车费);
- a known thing with a generic part glued to it is the whole ("信箱门甩咗" → 信箱, the guide).

Pure and deterministic.
"""

from __future__ import annotations

import re

from bot.conversation.nlu.beneficiary import PERSON_WORDS
from bot.conversation.nlu.heads import (
    _NOT_THING,
    CLASSIFIERS,
    GENERIC_AREAS,
    GENERIC_PARTS,
    HEAD_CHARS,
    PREDICATE,
    Tagged,
    tagged,
)
from bot.conversation.nlu.normalize import ITEMS, find_town

_KNOWN = frozenset(ITEMS)
# the closed classes of modifiers the guide drops (material, size, colour, language, users, age and condition, power
# and working, what it guards against, where or whose)
_DROPPED = re.compile(
    r"^(?:胶|塑料|塑胶|木|木头|铁|钢|不锈钢|铝|铝合金|玻璃|布|皮|纸|棉|竹|"
    r"[大细小中加超特](?:号|码|型|size|屏|字|款)?|加大|加厚|加长|"
    r"[红黄蓝绿白黑灰粉紫]色?|彩色|"
    r"英文|中文|英语|英汉|汉英|"
    r"老人|老年|儿童|小朋友|孕妇|婴儿|成人|学生|长者|病人|盲人|男装|女装|童装|男|女|"
    r"新|旧|二手|全新|新嘅|好|靓|平|贵|便宜|普通|一般|最新|"
    r"电动|手动|智能|自动|全自动|半自动|折叠|可折叠|便携|多功能|专用|特制|进口|国产|"
    r"防\S|定位|报警|求救|呼叫|一键|紧急|分类|来回|每次|每月|公共|公交|村|小区|屋企|家用|户外|"
    # how it is built, by a count of its parts (四脚[拐杖], 三轮[车]), or which side of something it goes (床边[扶手])
    r"[一二两三四五六七八九十][\u4e00-\u9fff]|\S{1,2}(?:边|旁|头|尾|底)|"
    # help in money, not a kind of thing (资助学费)
    r"资助|补助|补贴|救济|"
    # where it is: a place or a facility (公厕门锁, 凉亭瓦片)
    r"\S*(?:场|站|园|馆|中心|巷|街|村|区|楼|桥|市场|路|厕|室|房|亭|屋|舍))$",
)
_OPENS = re.compile(
    rf"^(?:[一两二三四五六七八九十几半\d]{{0,3}}[{CLASSIFIERS}]|啲|些|想要|需要|要|买|申请|想申请|换|装|嘅|的|之)$"  # 嘅/的/之: after a description (冬天嘅保暖内衣)
)
# what a known thing guards against, before it ("防走失手环", "防褥疮床垫"; not 防护栏: nothing between)
_GUARDS = re.compile(
    "^防[\u4e00-\u9fff]{2,3}?(?P<w>"
    + "|".join(sorted((w for w in ITEMS if len(w) >= 2), key=len, reverse=True))
    + ")$"
)
_CJK2 = re.compile(r"^[\u4e00-\u9fff]{2}$")
_END = re.compile(r"^(?:$|[\s，,。！!？?；;])")
# what a machine does wrong, beside the predicates of `heads` (滴水, 漏水, 冒烟, 好嘈)
_FAULT = re.compile(r"^(?:滴|漏|冒|响|震|嘈|吵|噪)")


def _modifier_word(t: Tagged) -> bool:
    """A word of two characters that can open a thing's own name: a noun or a verb, from no dropped class."""
    return (
        _CJK2.match(t.word) is not None
        and t.flag.startswith(("n", "v"))
        and not t.flag.startswith(("nr", "ns", "nt"))
        and _DROPPED.match(t.word) is None
        and t.word not in PERSON_WORDS
        and t.word not in _KNOWN
        and _NOT_THING.match(t.word) is None
        and find_town(t.word) is None
        and not re.match(r"[想要买换装申有冇没无唔不系是就]", t.word)
        and t.word[-1] not in CLASSIFIERS  # 系/部: a copula and a classifier the tagger glued
    )


def _left(text: str, tokens: tuple[Tagged, ...], value: str, found: list[str]) -> str:
    at = text.find(value)
    k = next((i for i, t in enumerate(tokens) if t.end == at), None)
    if k is None or k == 0 or len(value) + 2 > 5:
        return value
    word, before = tokens[k], tokens[k - 1]
    if _modifier_word(word) and _OPENS.match(before.word) and word.word not in found:
        return word.word + value
    return value


def _right(text: str, tokens: tuple[Tagged, ...], value: str) -> str:
    end = text.find(value) + len(value)
    k = next((i for i, t in enumerate(tokens) if t.start == end), None)
    if value not in _KNOWN or k is None:
        return value
    part = tokens[k]
    after = text[part.end :]
    if (
        _CJK2.match(part.word)
        and part.flag == "n"
        and part.word[-1] in HEAD_CHARS
        and PREDICATE.match(part.word) is None
        and part.word not in _KNOWN
        and not any(part.word in w for w in _KNOWN)
        and not set(part.word) & set(value)
        and part.word not in GENERIC_AREAS
        and not set(part.word) & GENERIC_PARTS
        and _NOT_THING.match(part.word) is None
        and part.word not in PERSON_WORDS
        and (PREDICATE.match(after) or _END.match(after) or _FAULT.match(after))
    ):
        return value + part.word
    return value


# a part named after the thing it belongs to ("轮椅个刹车", "雪柜嘅密封条", "路灯个灯头"), before what is wrong with it
_PART_GAP = re.compile(
    r"^(?:个|嘅|的|啲|[一两二三四五六七八九十几]个|[一两二三四五六七八九十几]?[只条块张粒])$"
)
_PART_FAULT = re.compile(
    r"^(?:[一两二三四五六七八九十几]?[年月日]|成日|都|又|已经|全部)?\s*"
    r"(?:冇|唔|坏|烂|穿|磨|甩|松|烧|断|爆|漏|裂|跌|吊|散|崩|脱|掉|锈|生锈)"
)


def _part(text: str, tokens: tuple[Tagged, ...], value: str) -> str:
    """The part with its own name a fault is said of, in place of the thing it belongs to (the dev 7 and dev 8
    headers: 路灯个[灯罩]跌咗, 拐杖个[胶头]甩咗; a generic part — 门, 脚, 盖 — still gives the whole)."""
    end = text.find(value) + len(value)
    k = next((i for i, t in enumerate(tokens) if t.start == end), None)
    if k is None:
        return value
    j = k
    while j < len(tokens) and _PART_GAP.match("".join(t.word for t in tokens[k : j + 1])):
        j += 1
    # a noun, or a name of two characters the tagger took for a verb (脚踏, 开关)
    if (
        j == k
        or j >= len(tokens)
        or not tokens[j].flag.startswith(("n", "v" if len(tokens[j].word) == 2 else "n"))
    ):
        return value
    part = tokens[j].word
    m = j + 1
    while (
        m < len(tokens) and len(part) < 4 and tokens[m].flag in ("n", "ng", "q") and len(tokens[m].word) == 1
    ):
        part += tokens[m].word  # 脚/套: a name the tagger cut
        m += 1
    after = text[tokens[j].start + len(part) :]
    if (
        len(part) >= 2
        and re.fullmatch(r"[\u4e00-\u9fff]+", part)
        and part not in GENERIC_AREAS
        and part not in PERSON_WORDS
        and _NOT_THING.match(part) is None
        and not part.endswith(("费", "钱"))
        and (_PART_FAULT.match(after) or PREDICATE.match(after))
    ):
        return part
    return value


_STAPLE_RUN = re.compile(r"[米油面盐糖]{2,4}")
_COUNTED_IN = re.compile(
    r"^(?P<a>[\u4e00-\u9fff]{1,4}?)[一两二三四五六七八九十几]{1,2}[包袋桶支罐瓶樽个张件套斤](?P<b>[\u4e00-\u9fff]{1,4})$"
)


def _split(value: str) -> list[str]:
    """Several things the model or a reading took as one: staples side by side ("油面" → 油, 面), things counted one
    after the other ("米两包油" → 米, 油), two of a pair ("秋衣秋裤" → 秋衣, 秋裤)."""
    if _STAPLE_RUN.fullmatch(value) and value not in _KNOWN:
        return list(value)
    counted = _COUNTED_IN.match(value)
    if counted:
        return [counted.group("a"), counted.group("b")]
    if len(value) == 4 and value[0] == value[2] and value[:2] != value[2:] and value not in _KNOWN:
        return [value[:2], value[2:]]
    return [value]


def named(text: str, found: list[str]) -> list[str]:
    """`found` with each thing widened to its own compound name where the sentence gives one."""
    if not found:
        return found
    found = [w for v in found for w in _split(v)]
    tokens = tagged(text)
    for a, b in zip(list(found), list(found[1:]), strict=False):
        if len(a) == 2 and a[0] in "同和跟" and a + b in text:  # "午餐费同/校车费" read as 同校, 车费: 校车费
            found = [a[1:] + b if v == a else v for v in found if v != b]
    out: list[str] = []
    widened: list[str] = []
    for value in found:
        wide = value
        cut = next((k for k in (2, 3) if value[k:] in _KNOWN and _DROPPED.match(value[:k])), 0)
        if value not in _KNOWN and cut and len(value) - cut >= 2:
            value = value[cut:]  # "四脚拐杖", "床边扶手": a modifier of a dropped class before a known thing
        guarded = _GUARDS.match(value)
        paying = re.fullmatch(r"(?:交(?!通)|缴|付)(?P<f>[\u4e00-\u9fff]{1,4}(?:费|租|金))", value)
        if paying:
            wide = paying.group("f")  # "帮佢交话费": the fee, not paying it
        elif guarded:
            wide = guarded.group("w")  # "防走失手环" → 手环: what it guards against is a modifier (the guide)
        elif (
            len(value) >= 3
            and value not in _KNOWN
            and value[:-1] in _KNOWN
            and re.match(r"[唔不]", text[text.find(value) + len(value) :])
        ):
            wide = value[:-1]  # "铁闸锁唔到": the verb the tagger glued to the thing
        elif len(value) >= 3 and value not in _KNOWN and value[:-1] in _KNOWN and value[-1] in GENERIC_PARTS:
            wide = value[:-1]  # "信箱门甩咗": a generic part gives the whole (the guide)
        elif len(value) >= 2 and value in text:
            wide = _right(text, tokens, _left(text, tokens, value, found))
            wide = _part(text, tokens, wide) if wide in text else wide
        widened += [wide] if wide != value else []
        if wide not in out:
            out.append(wide)
    # a part of a name widened here is no thing of its own (外机 of 空调外机); a town is no thing
    return [v for v in out if not any(v in w and v != w for w in widened) and find_town(v) is None]
