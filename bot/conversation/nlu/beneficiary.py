"""Whom a wish is for, read the way the annotation guide marks it (nlu_data/README.md, "Annotation guide").

- A kin word or an age/condition group: 阿妈, 老豆, 孙女, 老公, 老人家, 独居老人, 留守儿童, 残疾人, 盲人 …
- The kin word itself, without 我 or a classifier, even where the Rasa tokenizer (jieba, with the project's user
  dictionary) makes one token of them ("我妈瘫在床上" → 妈, "我个仔" → 仔, "给我妈买" → 妈): the case records the
  person, as the evaluation gold of 2026-12-06 marks it (nlu_data/README.md).
- Not the speaker's own status (低保户, 外来工, 单亲妈妈, "我系残疾人", 本人, 两公婆), not the speaker's spouse
  named with the speaker ("我同老婆都七十几": the help is for the household), not people who are not the recipient
  (a kin word who died — "我老婆走咗之后…" —, neighbours, social workers, volunteers), no pronouns.
- The one the help is asked for ("帮/给/为 X …", "X … 俾佢") when the message says so, else the first named;
  persons named together ("孙仔孙女", "俾佢同表妹") are recorded together ("孙仔、孙女").

Pure and deterministic; jieba is loaded on first use (≈ 1 s) with the same user dictionary as the Rasa pipeline.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

_USERDICT = Path(__file__).resolve().parents[3] / "nlu_data" / "jieba" / "jieba_userdict.txt"

#: kin words and age/condition groups that name the recipient of a wish
PERSON_WORDS: frozenset[str] = frozenset(
    """独居老人 空巢老人 孤寡老人 留守儿童 残疾人 伤残人士 残障人士 聋哑人 盲人 精神病人 老人家 老人 老年人 长者
阿婆 阿公 阿伯 阿嫲 阿爷 阿嬷 阿妈 阿爸 阿姐 婆婆 公公 爷爷 奶奶 嫲嫲 外婆 外公 老爸 老妈 老豆 老母 老窦 我爸 我妈
妈妈 爸爸 父亲 母亲 家婆 家公 奶奶 孩子 小孩 小孩子 细路 细路仔 小朋友 儿童 BB 仔女 儿子 女儿 孙子 孙女 孙仔 孙女仔
外孙 外孙女 弟弟 妹妹 哥哥 姐姐 细佬 细妹 家姐 老伴 老公 老婆 丈夫 妻子 太太 爱人 学生 大女 细女 大仔 细仔
表妹 表弟 表哥 表姐 堂妹 堂弟 侄仔 侄女 外甥 外甥女 外孙仔 孙儿 囡囡 阿哥 阿弟 阿妹 伯父 伯母 叔叔 婶婶 舅舅 姑姑
老爷 奶奶 婆婆 阿太 太婆 太公 病人 孤儿 小学生 中学生 大学生
外母 外父 岳母 岳父 姨妈 姨丈 姑妈 姑丈 舅父 舅母 爹哋 妈咪 新抱 心抱 媳妇 儿媳 女婿 闺女 阿嫂 阿姑 阿姨 阿叔 阿婶
阿哥 大佬 工友 后生仔 独居长者 孤寡长者 空巢长者 屋企人 单亲妈妈 家人
姥姥 姥爷 丈母娘 老丈人 宝宝 BB女 BB仔 bb""".split()
)
# kin titles built from parts (the recipient's own name, as the gold marks it): 契仔/契爷, 二叔/三叔公/细姨/姑婆,
# a surname and a title (陈伯, 张姨), a group called by its condition (视障人士, 独居长者)
_SURNAMES = (
    "陈张李王黄林刘梁何郭罗吴周郑谢邓冯曾赖蔡许钟卢杨朱胡徐麦莫邝廖谭袁彭"
    "赵孙马高叶潘苏余江温方石叶邱骆欧阳洪严戴贺区霍"
)
_KIN_FORM = re.compile(
    r"契(?:仔|女|爷|妈|爹|娘|哥|姐)|"
    r"(?:[大细二三四五六七八九]|叔|姑|姨|舅|伯)(?:叔公|叔婆|姑婆|姨婆|舅公|公|婆|叔|婶|姑|姨|舅|伯|妈|爷)|"
    rf"[{_SURNAMES}](?:阿姨|奶奶|婆婆|伯伯|叔叔|爷爷|阿婆|阿伯|阿叔|阿公|阿婶|伯|姨|叔|婶|婆)(?![母父])|"
    r"(?:视障|听障|残障|伤残|残疾|失明|失聪|病残)人士|(?:独居|孤寡|空巢|困难|残疾)长者|"
    # a kin root with the prefixes that make kin words of it (侄孙, 继女, 干妈, 阿舅, 曾孙, 外曾祖母, 小姨子)
    r"(?:外|表|堂|侄|契|干|继|阿)(?:曾|太|祖){0,2}"
    r"(?:孙女|孙仔|孙|舅|姨|姑|叔|伯|婶|嫂|哥|姐|弟|妹|爷|嫲|公|婆|妈|爸|女|仔|父|母)(?![\u4e00-\u9fff]{0}子)|"
    r"曾(?:孙女|孙仔|孙)|(?:曾)?祖(?:父|母)|小(?:姨|舅)子"
)
# someone named by what they are (学生, 贫困生, 流浪汉, 哑仔, 病友), read from where the sentence puts a recipient:
# after 帮/给/为 before the request ("帮班上一个贫困生申请"), or after 我个/有个/有位 before what is said of them
_PERSON_END = "生|汉|仔|女|人|士|者|童|婆|公|伯|叔|姨|佬|友|傅|妹|哥|姐|囡"
_NAMED_BY_ROLE = re.compile(
    r"(?:(?:帮|给|为|替)(?:我|我哋|我们)?(?:班上|屋企|家里|村里)?(?:一个|一位|个|位|嘅|的)?"
    rf"(?P<a>[\u4e00-\u9fff]{{1,3}}?(?:{_PERSON_END}))(?=申请|买|要|装|整|搞|揾|问|报名|争取))|"
    r"(?:我个|我嘅|我的|有个|有位|有一个|有一位)(?:好|几|两|三)?"
    rf"(?P<b>[\u4e00-\u9fff]{{1,3}}?(?:{_PERSON_END}))(?=\s|有|冇|没|患|得咗|得了|读|系|住|成日|好|都|瘫|中风|$)"
)
#: one-character kin words, a person only right after 我/个/我个 ("我个仔", "给我妈", "我个孙")
_SHORT_KIN = frozenset("仔女孙妈爸囡妹弟娘")
# (the start of the message too: "孙哮喘成日入医院"; 俺 is "my" in northern speech: "俺娘")
_SHORT_KIN_BEFORE = frozenset(
    ("", "我", "俺", "个", "我个", "我嘅", "我的", "啲", "我啲", "佢个", "两个", "几个")
)
# the same, when jieba glues the short kin word to what follows ("个仔读大学": 个/仔读)
_SHORT_KIN_GLUED = re.compile(
    r"(?:(?<=我个)|(?<=我嘅)|(?<=我的)|(?<=[我个俺])|^)(?P<kin>[仔女孙囡妹弟娘])(?![女仔子儿妹弟])"
)
# a kin word followed by this is someone who died, or who told the speaker: the help is not for them
_GONE = re.compile(
    r"^(?:都|已经|早)?(?:走咗|走了|去世|过世|过身|死咗|死了|不在了|(?:唔喺度|冇咗|没了)(?![\u4e00-\u9fff])|"
    r"(?:唔喺度|冇咗|没了)(?:之后|以后|后|几年|好多年|好耐))|"
    r"^(?:(?:话|说|讲)(?:我|佢|他|她|可以|有得)|叫我|介绍|推荐|教我|告诉我|同我讲|跟我说)|"  # who told the speaker
    # someone away or working elsewhere ("老公喺工厂返夜班", "儿子在外地打工", "阿爸阿妈都返咗广西", "爸爸坐监")
    r"^(?:都|就|又)?(?:(?:在|喺|去咗|去了)\S{0,6}?(?:打工|返工|工作|上班|返夜班|开工)|返咗|出咗去|坐(?:紧)?监|坐(?:紧)?牢|做\S{0,2}厂)|"
    r"^(?:都|就|又|长期|一直)?(?:在|喺|去咗)(?:外地|外省|外面|出面|国外|外国)|"
    r"^(?:啱啱|刚刚|刚|前年|旧年|去年)(?:走咗|去世|过世|过身|死咗)"
)
# a person followed by an illness or an injury is the one who needs the help ("细仔有哮喘", "孙仔两岁 有先天性心脏病")
_AILING = re.compile(
    r"^\S{0,5}?\s?(?:有|患有?|患咗|得咗|得了)\S{0,6}?(?:病|症|癌|喘|炎|障碍|痴呆)|^\S{0,3}?(?:中风|瘫|失明|聋咗|断咗)"
)
# the recipient is named right after these ("帮我阿妈申请", "给孩子买", "为残疾人申请")
_FOR = re.compile(r"(?:帮|给|俾|畀|为|替)(?:我|我哋|我们|屋企|家里)?(?:个|的|嘅)?$")

# "单亲妈妈", "单亲家庭的妈妈", "我系残疾人", "屋企得我一个老人家": the speaker's status, not a recipient
_STATUS_BEFORE = re.compile(
    r"单亲(?:的|嘅)?$|(?:我|本人|我自己|自己)(?:都|也|就)?(?:系|是|係)(?:一个|个|一名)?$|(?:得|剩)?我一个$"
)
_VISITED = re.compile(r"(?:返去|回去|返乡下|回老家)(?:睇|探|探望|看望|照顾|陪)(?:下)?(?:佢|他|她)")
_STATUS_FROM = re.compile(r"(?:我|本人)(?:系|是|係)[\u4e00-\u9fff]{1,4}(?:的|嘅)$")
# a person word used as the kind of a thing or a place ("老人手机", "儿童滑梯", "老人活动中心")
_A_THING_FOR = re.compile(r"^(?:手机|机|用品|院|活动|中心|食堂|饭堂|鞋|专用|乐园|游乐|滑梯|座椅|纸尿裤)")
# who a kind of thing is for (老人手机, 儿童滑梯); a kin word before 手机 is whose phone it is (外婆手机欠费)
_KIND_OF_USER = re.compile(r"(?:人|人士|长者|老人|老人家|儿童|小朋友|学生|婴儿|孕妇|BB)$")
# the speaker's spouse named with the speaker ("我同老婆都七十几"): the help is for the couple, no recipient
_SPOUSE = frozenset(("老婆", "老公", "老伴", "丈夫", "妻子", "太太", "爱人"))
_WITH_SPEAKER = re.compile(r"(?:我|我自己)(?:同|和|跟|与)(?:我)?$")
# persons named together: nothing, a conjunction, or "佢同" after 俾/给 ("俾佢同表妹" → 佢 is the first)
_TOGETHER = re.compile(r"^(?:\s*(?:同埋|同|和|跟|与|及|、|,|，)?\s*)$")
_WITH_HIM = re.compile(r"(?:俾|畀|给|帮|为)(?:佢|他|她)(?:同埋|同|和|跟)$")
# "… 俾佢", "… 给她用": the recipient is the person named last before it
_TO_HIM = re.compile(r"(?:俾|畀|给)(?:佢|他|她)")
_PERSON_RE = re.compile(
    "|".join(sorted((re.escape(w) for w in PERSON_WORDS if w not in ("我妈", "我爸")), key=len, reverse=True))
)

# what the role reading must not take for a person: a place, a time, a quantity, the speaker's own kind of work
_NOT_A_ROLE = re.compile(
    r"^(?:一|两|几|三|呢|嗰|个)|月|礼拜|年|日|钟|人人|有人|别人|其他人|屋企人|家人|佢|我|你|东西|嘢"
)

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    # jieba loads a dictionary of ~350k words (≈ 1 s): only on the first beneficiary lookup, not on import
    import jieba

    with _lock:
        tokenizer = jieba.Tokenizer()
        jieba.setLogLevel(60)
        tokenizer.initialize()
        if _USERDICT.is_file():
            with _USERDICT.open("rb") as handle:  # jieba leaves a file it opens itself unclosed
                tokenizer.load_userdict(handle)
    return tokenizer


def _tokens(text: str) -> list[tuple[str, int, int]]:
    return [(word, start, end) for word, start, end in _tokenizer().tokenize(text)]


def _is_person(words: list[str], before: str) -> bool:
    joined = "".join(words)
    if joined in PERSON_WORDS or _KIN_FORM.fullmatch(joined):
        # "我妈"/"我爸" only when they are one token; otherwise the kin word without 我
        return not (len(words) > 1 and words[0] == "我")
    return len(words) == 1 and joined in _SHORT_KIN and before in _SHORT_KIN_BEFORE


def candidates(text: str) -> tuple[tuple[int, str], ...]:
    """(position, word) of every person named as a possible recipient, in order, token-aligned, the speaker's
    status, the dead and non-recipients left out."""
    return _candidates(unicodedata.normalize("NFKC", text or ""))


@lru_cache(maxsize=256)
def _candidates(cleaned: str) -> tuple[tuple[int, str], ...]:
    """``candidates`` of a normalized text. A pure function of the text, kept for the last texts read: one
    message's text is read by the slot reader, the recipient's reading and the cue's (three times for a wish)."""
    tokens = _tokens(cleaned)
    found: list[tuple[int, str]] = []
    i, before = 0, ""  # before: the last token before i that is not blank ("我个 孙": spaces skipped)
    while i < len(tokens):
        for size in (3, 2, 1):  # the longest token sequence that is a person ("空巢/老人" → 空巢老人)
            words = [t[0] for t in tokens[i : i + size]]
            if len(words) == size and _is_person(words, before):
                start, end = tokens[i][1], tokens[i + size - 1][2]
                if cleaned[start] == "我" and end - start > 1:  # 我妈/我爸, one token: the kin word itself
                    start += 1
                if _counts(cleaned, start, end):
                    found.append((start, cleaned[start:end]))
                break
        else:
            size = 1
        before = next((w for w in reversed(words[:size]) if w.strip()), before)
        i += size
    # jieba glued a word to its neighbour ("孙仔读", "个仔上"): the word itself, off token boundaries
    glued = [(m.start(), m.group()) for m in _PERSON_RE.finditer(cleaned)]
    glued += [(m.start("kin"), m.group("kin")) for m in _SHORT_KIN_GLUED.finditer(cleaned)]
    glued += [(m.start(), m.group()) for m in _KIN_FORM.finditer(cleaned)]
    glued += [
        (m.start(g), m.group(g))
        for m in _NAMED_BY_ROLE.finditer(cleaned)
        for g in ("a", "b")
        if m.group(g) and len(m.group(g)) >= 2 and not _NOT_A_ROLE.search(m.group(g))
    ]
    for start, word in sorted(glued):
        if word == "我妈" or word == "我爸":
            start, word = start + 1, word[1:]
        inner = [(s, w) for s, w in found if start <= s and s + len(w) <= start + len(word) and w != word]
        if inner and _KIN_FORM.fullmatch(word) and word[0] in _SURNAMES:
            found = [f for f in found if f not in inner]  # "王/阿姨": the person by surname and title
        inside = any(s <= start < s + len(w) or start <= s < start + len(word) for s, w in found)
        if not inside and _counts(cleaned, start, start + len(word)):
            found.append((start, word))
    if _SELF.search(cleaned) and not any(_FOR.search(cleaned[max(0, s - 6) : s]) for s, _ in found):
        return ()  # "我老公返夜班 我自己腰骨痛 想要个护腰": the speaker is in need; the others work, advise or are away
    return tuple(sorted(found))


# the speaker's own need: an ailment, a body that fails, living alone (dev 8's header: a household member who works,
# advises or lives away is not the recipient)
_SELF = re.compile(
    r"我自己(?:都|又|本身)?[\u4e00-\u9fff]{0,3}?(?:痛|唔好|不好|有病|病咗|唔得|一个人?住|半身不遂|坐轮椅)"
)


# whom the speaker lacks ("冇仔女"), whom a message is sent to ("打电话俾个仔"), a person a group word describes
# ("我弟弟是残疾人"): none of them the recipient
_NOT_HERE = re.compile(r"(?:冇|没有|无|冇晒)$|(?:电话|短信|信息|视频|微信|寄嘢|寄钱)(?:俾|畀|给)(?:个|我)?$")
_DESCRIBED = re.compile(r"(?:是|系|係)(?:一个|个|一名)?$")
_GROUP = re.compile(r"(?:人|人士|长者|老人|老人家|儿童)$")
# both the speaker and the spouse ask ("我同老公都要老花镜", "想要两对拐杖")
_BOTH_ASK = re.compile(
    r"都(?:要|想要|需要|想申请)(?!上班|返工|返学|工作|打工|开工|做|去|返|照顾|睇)|(?:要|想要|申请|需要)(?:两|二)(?:对|副|个|张|部|架|支|套|双|份)"
)


def _counts(text: str, start: int, end: int) -> bool:
    """A person word that may be the recipient: not someone who died, not the speaker's status (单亲妈妈), not the
    speaker's spouse named with the speaker."""
    before = text[:start].rstrip()
    rest = text[end:].lstrip()
    partner = _PERSON_RE.match(rest.lstrip("同和及、"))
    after_partner = rest.lstrip("同和及、")[partner.end() :] if partner else ""
    if after_partner.startswith("都") and _GONE.match(after_partner):  # "阿爸阿妈都返咗广西": both away
        return False
    if text[start:end] in _SPOUSE and _WITH_SPEAKER.search(before) and not _BOTH_ASK.search(text):
        return False
    if _NOT_HERE.search(before) or (_DESCRIBED.search(before) and _PERSON_RE.search(before[-8:])):
        return False
    if _GROUP.search(text[start:end]) and (_PERSON_RE.match(text, end) or _KIN_FORM.match(text, end)):
        return False  # "盲人阿伯", "独居老人李奶奶": the group says what the person after it is
    if (_A_THING_FOR.match(text[end:]) and _KIND_OF_USER.search(text[start:end])) or (
        text[start:end] == "老人" and text[end:].startswith("痴呆")
    ):  # "老人手机", "老人活动中心": a kind of thing or place, not a person
        return False
    if _VISITED.search(rest):
        return False  # "老豆病 想申请车费返去睇佢": whom the speaker goes to see, the help is the speaker's
    if _GROUP.search(text[start:end]) and _STATUS_FROM.search(before):
        return False  # "我是茶山的残疾人": the speaker's status, with where the speaker is from
    return not _GONE.match(text[end:].lstrip()) and not _STATUS_BEFORE.search(before)


def find_beneficiary(text: str) -> str | None:
    """Who the help is for ("我妈瘫在床上" → 妈, "给我妈买个助行器" → 妈), with the persons named together with
    them ("孙仔孙女" → 孙仔、孙女), or None."""
    found = candidates(text)
    if not found:
        return None
    cleaned = unicodedata.normalize("NFKC", text or "")
    return together(cleaned, _cued(cleaned, found) or found[0], found)


def _cued(text: str, found: Sequence[tuple[int, str]]) -> tuple[int, str] | None:
    """The person the message says the help is for: after 帮/给/为, or the last one named before "俾佢"."""
    chosen = next((c for c in found if _FOR.search(text[max(0, c[0] - 6) : c[0]])), None)
    if chosen is None and len({w for _, w in found}) > 1:  # the one with the illness ("细仔有哮喘")
        chosen = next(
            (c for c in found if _AILING.match(text[c[0] + len(c[1]) : c[0] + len(c[1]) + 16])), None
        )
    if chosen is None and len({w for _, w in found}) > 1:
        to_him = _TO_HIM.search(text, found[0][0])
        if to_him:  # "大女考上大学 … 细女读小学 想申请校服俾佢" → 细女
            chosen = next((c for c in reversed(found) if c[0] < to_him.start()), None)
    return chosen


def cued_recipient(text: str) -> str | None:
    """The recipient the message points at with 帮/给/为 or "… 俾佢" (with those named together), else None."""
    cleaned = unicodedata.normalize("NFKC", text or "")
    found = candidates(cleaned)
    chosen = _cued(cleaned, found)
    return together(cleaned, chosen, found) if chosen else None


def together(text: str, chosen: tuple[int, str], found: Sequence[tuple[int, str]]) -> str:
    """`chosen` and the persons named right beside it ("孙仔孙女", "阿妈同阿爸") or with its pronoun after 俾/给
    ("俾佢同表妹"), joined by 、 in the order named."""
    group = [chosen]
    for start, word in found:
        if word in {w for _, w in group}:
            continue
        for s0, w0 in list(group):
            gap = text[s0 + len(w0) : start] if s0 < start else text[start + len(word) : s0]
            if _TOGETHER.match(gap) or (s0 < start and _WITH_HIM.search(text[:start].rstrip())):
                group.append((start, word))
                break
    return "、".join(w for _, w in sorted(group))


def is_recipient(text: str, value: str) -> bool:
    """Whether `value` (e.g. the model's span) is one of the recipients this text names."""
    return any(word == value for _, word in candidates(text))


def with_partners(text: str, value: str) -> str:
    """`value`, a recipient this text names, with the persons named together with it ("孙仔" → 孙仔、孙女)."""
    cleaned = unicodedata.normalize("NFKC", text or "")
    found = candidates(cleaned)
    chosen = next((c for c in found if c[1] == value), None)
    return together(cleaned, chosen, found) if chosen else value


def token_aligned(text: str, value: str) -> str:
    """`value` widened to the smallest span of whole tokens containing its first mention in `text`, as the
    annotation guide marks a word the tokenizer glues to a neighbour ("灯坏晒" → 灯坏); `value` itself when the text
    does not contain it or it already starts and ends on token boundaries."""
    cleaned = unicodedata.normalize("NFKC", text or "")
    at = cleaned.find(value) if value else -1
    if at < 0:
        return value
    end = at + len(value)
    tokens = _tokens(cleaned)
    start = max((s for _, s, _ in tokens if s <= at), default=at)
    stop = min((e for _, _, e in tokens if e >= end), default=end)
    return cleaned[start:stop].strip() or value
