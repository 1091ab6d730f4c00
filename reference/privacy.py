"""Privacy rules in one place: recognising, normalising and masking phone numbers and ID-card numbers.

Every view, export, log line and chat reply masks through these functions; the original is read only through the
audited reveal. Rules:

- a mobile number (11 digits starting with 1) is shown as ``138****5678``;
- a landline (area code 0xx/0xxx + 7–8 digits) as ``0769-****5678``;
- a resident identity card number (18 characters, the last may be X) as ``441900********123X``;
- anything else that is not empty keeps only its last four characters (or fewer for very short values).

Numbers inside free text are found also when written with spaces, dashes, full-width digits or spoken Chinese
digits (一三八…, 幺 for 1), because residents write them that way.
"""

from __future__ import annotations

import re
import unicodedata

_SPOKEN = str.maketrans(
    {
        "零": "0",
        "〇": "0",
        "洞": "0",
        "一": "1",
        "幺": "1",
        "二": "2",
        "两": "2",
        "三": "3",
        "四": "4",
        "五": "5",
        "六": "6",
        "七": "7",
        "八": "8",
        "九": "9",
    }
)
_FULLWIDTH_DIGITS = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)})
_DIGIT_CLASS = r"[0-9零〇洞一幺二两三四五六七八九]"
_SEP = r"[\s\-－—.·()（）]?"

MOBILE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
LANDLINE_RE = re.compile(r"(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)")
ID_CARD_RE = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])"
)

# In free text: 11 mobile digits (possibly spoken or separated), landlines with an area code, ID numbers.
_TEXT_MOBILE_RE = re.compile(
    rf"(?<!{_DIGIT_CLASS})(?:\+?86{_SEP})?[1一幺]{_SEP}(?:{_DIGIT_CLASS}{_SEP}){{9}}{_DIGIT_CLASS}(?!{_DIGIT_CLASS})"
)
_TEXT_LANDLINE_RE = re.compile(
    rf"(?<!{_DIGIT_CLASS})[0零〇洞](?:{_DIGIT_CLASS}){{2,3}}{_SEP}(?:{_DIGIT_CLASS}{_SEP}){{6,7}}{_DIGIT_CLASS}(?!{_DIGIT_CLASS})"
)
_TEXT_ID_RE = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}\d{7}[\dXx](?![0-9A-Za-z])")

_AREA_3 = ("010", "020", "021", "022", "023", "024", "025", "027", "028", "029")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", unicodedata.normalize("NFKC", text).translate(_SPOKEN))


_SEPARATORS = r"[\s\-－—.·()（）]+"
_LANDLINE_RE = re.compile(r"0769\d{8}")
_COUNTRY_CODE_RE = re.compile(r"^(?:\+|00)?86(?=1[3-9]\d{9}$)")


def _digit_groups(text: str) -> list[list[str]]:
    """Runs of digits (a leading ``+`` kept), grouped while only separators stand between them.

    ``电话 (+86) 138 2695 1234 或 10086`` → ``[["+86", "138", "2695", "1234"], ["10086"]]``.
    """
    cleaned = unicodedata.normalize("NFKC", text).translate(_SPOKEN)
    groups: list[list[str]] = []
    end = -1
    for run in re.finditer(r"\+?\d+", cleaned):
        if groups and re.fullmatch(_SEPARATORS, cleaned[end : run.start()]):
            groups[-1].append(run.group())
        else:
            groups.append([run.group()])
        end = run.end()
    return groups


def normalize_phone(text: str | None) -> str | None:
    """Digits of the first mobile (11 digits) or Dongguan landline (0769 + 8 digits) anywhere in the text, or None.

    Accepts spaces, dashes, full-width and spoken digits (``一三八 二六九五 一二三四``) and a +86/0086 country code
    before a mobile. Numbers are read run by run: consecutive runs are joined only while the join is still a number,
    so ``10086 13812345678`` is the service number and then a mobile, not one run with ``0086`` inside it.
    """
    for runs in _digit_groups(text or ""):
        for first in range(len(runs)):
            joined = ""
            for run in runs[first:]:
                joined += run
                if len(joined) > 15:
                    break
                number = _COUNTRY_CODE_RE.sub("", joined)
                if MOBILE_RE.fullmatch(number) or _LANDLINE_RE.fullmatch(number):
                    return number
    return None


def parse_phone_field(raw: str | None) -> str | None:
    """A whole field that must be one phone number (spreadsheet import, staff forms): canonical form or None.

    Mobile numbers become 11 digits; landlines ``area-number`` (``0769-22123456``).
    """
    digits = re.sub(r"[\s\-()（）]", "", unicodedata.normalize("NFKC", raw or ""))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if MOBILE_RE.fullmatch(digits):
        return digits
    if re.fullmatch(r"0\d{2,3}\d{7,8}", digits):
        area = 3 if digits[:3] in _AREA_3 else 4
        return f"{digits[:area]}-{digits[area:]}"
    return None


def mask_phone(phone: str | None) -> str:
    """``138****5678`` for a mobile, ``0769-****5678`` for a landline, the last four digits otherwise; "" if empty."""
    if not phone or not phone.strip():
        return ""
    digits = _digits(phone)
    if len(digits) == 13 and digits.startswith("861"):
        digits = digits[2:]
    if len(digits) == 11 and digits.startswith("1"):
        return f"{digits[:3]}****{digits[-4:]}"
    if digits.startswith("0") and 10 <= len(digits) <= 12:
        area = 3 if digits[:3] in _AREA_3 else 4
        return f"{digits[:area]}-****{digits[-4:]}"
    if len(digits) <= 4:
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_id_card(number: str | None) -> str:
    """``441900********123X``: the region code and the last four characters stay."""
    if not number:
        return ""
    n = number.strip()
    if len(n) <= 10:
        return "*" * len(n)
    return n[:6] + "*" * (len(n) - 10) + n[-4:]


def mask_text(text: str | None) -> str:
    """Free text with every phone number and ID-card number in it masked (the rest unchanged)."""
    if not text:
        return ""
    text = text.translate(_FULLWIDTH_DIGITS)  # １３８… is a phone number too
    out = _TEXT_ID_RE.sub(lambda m: mask_id_card(m.group()), text)
    out = _TEXT_MOBILE_RE.sub(lambda m: mask_phone(m.group()), out)
    return _TEXT_LANDLINE_RE.sub(lambda m: mask_phone(m.group()), out)


def contains_personal_number(text: str | None) -> bool:
    """True when the text holds something that looks like a phone or ID-card number."""
    return bool(text) and mask_text(text) != text


def pseudonym(value: str | None) -> str:
    """A short, stable, non-reversible handle for log lines (openids, delivery keys that contain an openid):
    the same value gives the same handle, so lines can be correlated without the identifier itself."""
    # lazy: only pseudonyms need it
    import hashlib

    if not value:
        return "-"
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:12]


def mask_openid(openid: str | None) -> str:
    """A WeChat openid as staff may see it when no name or phone is known: ``oAb***x9Yz``."""
    if not openid:
        return ""
    return openid[:3] + "***" + openid[-4:] if len(openid) > 8 else "***"


# An address in free text: a number (ASCII, full-width or Chinese) followed by a house, building, room, floor, lane
# or unit word ("8号", "三巷", "2栋1单元", "501室"), or a 门牌/房号 mention.
_ADDRESS_RE = re.compile(
    r"[0-9０-９零〇一二三四五六七八九十百两]+\s*(?:号楼|号|栋|幢|座|室|层|巷|弄|单元|坊)"
    r"|[0-9]+\s*楼|门牌|房号|门号"
)
# A person named by surname and a form of address ("陈伯", "王阿姨", "李奶奶", "张先生", "刘同学").
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_NAMED_RE = re.compile(
    rf"[{_SURNAMES}](?:伯伯|伯|叔叔|叔|婆婆|婆|阿姨|姨|奶奶|爷爷|大爷|大妈|大叔|先生|女士|小姐|同学|老师|师傅|某)"
    rf"|(?:阿|老|小)[{_SURNAMES}](?![{_SURNAMES}]?(?:年|岁|人|区|镇|村))"
)


def contains_address(text: str | None) -> bool:
    """True when the text holds something that looks like a street address (house, building, room, lane number)."""
    return bool(text) and _ADDRESS_RE.search(unicodedata.normalize("NFKC", text or "")) is not None


def contains_named_person(text: str | None) -> bool:
    """True when the text names someone by surname and a form of address ("陈伯", "王阿姨", "阿陈")."""
    return bool(text) and _NAMED_RE.search(text or "") is not None
