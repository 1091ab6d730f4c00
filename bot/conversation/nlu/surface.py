"""The surface of a message that is not its words: spaces that voice input puts inside a word ("助 听 器"), a brand
before a thing ("格力风扇"), a classifier the model takes along with a thing ("袋米", "盏台灯"), traditional characters ("輪椅").

- `close`: the text with the spaces that split a word removed — a space next to a lone character ("助 听 器",
  "轮 椅") — so the reading sees the word; a space between clauses of several characters ("我个孙 想要 书包")
  stays. `Closed.reopen` gives a value read on the closed text back as the resident wrote it ("助 听 器"), as the
  evaluation gold marks it.
- `plain`: a thing without the brand or the lone classifier in front of it.

Pure and deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.conversation.nlu import hant, spelling
from bot.conversation.nlu.beneficiary import _tokenizer
from bot.conversation.nlu.heads import CLASSIFIERS
from bot.conversation.nlu.normalize import find_items

_CJK = "\u4e00-\u9fff"


def _IS_CJK(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff"


# brands of household appliances, phones and aids residents name before the thing (the guide: a brand is a
# modifier, 格力[风扇])
BRANDS = tuple(
    sorted(
        """格力 美的 海尔 海信 长虹 创维 康佳 TCL 志高 奥克斯 格兰仕 九阳 苏泊尔 小熊 艾美特 先锋 飞利浦 松下 西门子
        索尼 三星 乐视 小米 华为 荣耀 苹果 OPPO vivo 联想 戴尔 惠普 华硕 宏碁 方太 老板 万家乐 万和 樱花 容声 新飞 科龙
        澳柯玛 夏普 东芝 日立 大金 伊莱克斯 史密斯 欧姆龙 鱼跃 可孚 三诺 雅培 安耐糖 步步高 小天才 得力 晨光""".split(),
        key=len,
        reverse=True,
    )
)
_BRAND = re.compile("^(?:" + "|".join(map(re.escape, BRANDS)) + r")(?:牌|嘅|的)?\s*")
# what a thing is made of, its size, language or users (the dev headers: 胶[凳], 英文[字典], 大号[尿片], 无障碍[扶手],
# 儿童[滑梯]): a modifier before a known thing
_MATERIAL = re.compile(
    r"^(?:泥|胶|塑料|塑胶|木|铁|不锈钢|铝|铝合金|英文|中文|英语|英汉|大号|细码|大码|加大|小号|中号|加厚|厚|薄|无障碍|儿童|小朋友)"
    r"(?=[\u4e00-\u9fff])"
)
_COUNTED = frozenset(CLASSIFIERS + "啲些一二两三四五六七八九十几")
_SINGLE = frozenset("米油面盐糖被床渠路树灯椅凳药衫锅柜门窗桥墙")


@dataclass(frozen=True, slots=True)
class Closed:
    text: str
    origin: tuple[int, ...]  # for each character of `text`, its index in the resident's text
    source: str

    def reopen(self, value: str) -> str:
        """`value`, read on the closed text, as the resident wrote it (with the spaces inside it)."""
        at = self.text.find(value) if value else -1
        if at < 0 or self.text == self.source:
            return value
        return self.source[self.origin[at] : self.origin[at + len(value) - 1] + 1]


def close(text: str) -> Closed:
    """`text` without the spaces voice input puts inside a word ("想要个助 听 器" → "想要个助听器")."""
    keep = [True] * len(text)
    runs = [(m.start(), m.end()) for m in re.finditer(r"\s+", text)]
    bounds = [0, *(k for run in runs for k in run), len(text)]
    segments = [(bounds[k], bounds[k + 1]) for k in range(0, len(bounds), 2)]  # the words between the spaces
    for k, (start, end) in enumerate(runs):
        before, after = segments[k], segments[k + 1]
        lone = before[1] - before[0] == 1 or after[1] - after[0] == 1
        if lone and start > 0 and end < len(text) and _IS_CJK(text[start - 1]) and _IS_CJK(text[end]):
            for i in range(start, end):
                keep[i] = False
    origin = tuple(k for k in range(len(text)) if keep[k])
    return Closed("".join(text[k] for k in origin), origin, text)


def simplify(text: str) -> Closed:
    """`text` in simplified characters (`nlu.hant`) and known things in their own spelling (`nlu.spelling`: "电饭过"
    → 电饭锅), position for position, so a value read on it is given back as the resident wrote it ("輪椅", "电饭过")."""
    return Closed(spelling.respelled(hant.simplified(text)), tuple(range(len(text))), text)


def squeeze(value: str) -> str:
    """A model value with the spaces inside it removed ("助 听" → "助听")."""
    return re.sub(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])", "", value)


def plain(value: str, text: str = "") -> str:
    """A thing without a brand ("格力风扇" → 风扇) or a lone classifier the model took along ("袋米" → 米, "盏台灯" →
    台灯) in front of it; the value itself when what remains names no thing."""
    glued = re.fullmatch(rf"(?:啲|嗰啲|呢啲)?(?P<v>[{_CJK}]{{2,}}?)[个啲]", value) or re.fullmatch(
        rf"啲(?P<v>[{_CJK}]{{2,}})", value
    )
    if (
        glued
    ):  # "单车棚个顶", "啲座椅": a determiner or classifier the reading took along is no part of the name
        value = glued.group("v")
    lead = re.fullmatch(rf"[{CLASSIFIERS}](?P<v>[{_CJK}]{{3,}})", value)
    at = text.find(value) if text else -1
    if (
        lead
        and at >= 0
        and not (at > 0 and text[at - 1] in _COUNTED)
        and next(_tokenizer().tokenize(value, HMM=False))[0] == value[0]
    ):  # "条班马线": a classifier of its own before a name the lexicon does not know (not 对讲机, 一条…)
        value = lead.group("v")
    material = _MATERIAL.match(value)
    if material and (
        value[material.end() :] in _SINGLE or find_items(value[material.end() :]) == [value[material.end() :]]
    ):
        return value[
            material.end() :
        ]  # "塑料凳" → 凳, "无障碍坡道" → 坡道; not 儿童游乐场, 无障碍通道 (no known thing)
    brand = _BRAND.match(value)
    if brand and len(value) > brand.end():
        rest = value[brand.end() :]
        if len(rest) >= 2 or rest in _SINGLE:
            return rest
    guard = [w for w, _, _ in _tokenizer().tokenize(value, HMM=False)]
    if value.startswith("防") and len(guard) >= 2 and len(guard[-1]) >= 2 and guard[0].startswith("防"):
        return guard[
            -1
        ]  # "防走失手环" → 手环, "防褥疮床垫" → 床垫: what it guards against is a modifier (not 防滑垫)
    at = text.find(value)
    counted = (
        at > 0 and text[at - 1] in _COUNTED
    )  # "啲台凳": the determiner is the classifier, 台 is the name's
    if (
        len(value) >= 2
        and value[0] in CLASSIFIERS + "床"  # 床 counts bedding ("想要床电热毯")
        and not counted
        and find_items(value) != [value]
        and len(list(_tokenizer().tokenize(value, HMM=False))) > 1
    ):
        rest = value[1:]
        if rest in _SINGLE or (len(rest) >= 2 and find_items(rest) == [rest]):
            return rest
    return value
