"""Greetings and fillers that never carry a request: "喂 你好 …", "麻烦问一下 …", "… 谢谢".

Residents (often through voice recognition, without punctuation) open with a greeting and close with thanks; the
NLU and the keyword rules see only what lies between. A message that is nothing but greetings or thanks is told
apart, so the dialogue can greet back or acknowledge warmly.
"""

from __future__ import annotations

import re
import unicodedata

_GREETINGS = (
    r"喂+|你好[呀啊哇]?|您好[呀啊]?|你们好|大家好|哈喽|hello|hi|嗨|早上好|早晨|早安|中午好|下午好|晚上好|"
    r"在吗|在不在|在么|有人吗|有人在吗|有冇人|有人在不在"
)
_THANKS = r"谢谢(?:你们|您们|你|您|啦|了|哈)?|多谢(?:晒|你|您)?|感谢(?:你们|您|你)|唔该(?:晒|你)?|麻烦(?:你|您)?了|拜托(?:你|您)?了"
_LEADING_ONLY = (
    r"我跟你说(?:一下)?|我和你说(?:一下)?|跟你说(?:一下)?|我同你讲|同你讲|我想问一下|我想问下|"
    r"麻烦问一下|麻烦问下|麻烦你|麻烦一下|请问一下|请问下|请问|问一下|问下|打扰一下|打扰了|打扰下|"
    r"那个|这个|就是说|就是|是这样的|是这样|这样的|哎呀|哎哟|哎|唉|诶|欸|呃|额|嗯+|啊|哦|噢|喔|"
    r"同志|师傅|靓女|靓仔|小姑娘|小妹|领导|工作人员|"
    # Cantonese openers: "我想讲下 …", "同你讲下 …"
    r"我想讲下|我想讲一下|想讲下|同你讲下|我同你讲下|我想讲|讲下先|"
    # "never mind, I'll say it myself": after a question for a person, before the request itself
    r"(?:算了|不用了|唔使了|冇所谓)?[\s,，]*我(?:自己|直接)(?:讲|说|打字|来讲|来说|同你讲|跟你说)(?:吧|啦|喇|算了)?|"
    # "没事没事 / 冇事冇事" before a request is a polite opener, never the whole message ("没事了" stays whole)
    r"(?:没事|冇事|无事)(?=[\s,，。.!！]*(?:没事|冇事|无事)|[\s,，。.!！]+\S)"
)
_SEP = r"[\s,，。.!！~～…、:：;；?？]*"
# thanks at the start are a filler only when something else follows after a pause ("谢谢 我想问下进度");
# "谢谢你们帮我修好了路灯" is feedback and stays whole
_LEADING = re.compile(
    rf"^{_SEP}(?:(?:{_GREETINGS}|{_LEADING_ONLY}){_SEP}|(?:{_THANKS})[\s,，。.!！~～…、]+)", re.IGNORECASE
)
_TRAILING = re.compile(rf"{_SEP}(?:{_THANKS}){_SEP}$", re.IGNORECASE)
_GREETING_ANY = re.compile(rf"{_GREETINGS}", re.IGNORECASE)
_THANKS_ANY = re.compile(rf"{_THANKS}|感谢|🙏|👍|👏|💐|🌹|❤️?|辛苦了|辛苦晒", re.IGNORECASE)
# a pure acknowledgement: emoji and thanks only
_ACK_ONLY = re.compile(
    rf"^(?:{_SEP}(?:{_THANKS}|感谢|辛苦(?:你们|您)?了|辛苦晒|好人|[🙏👍👏💐🌹❤️\ufe0f]+){_SEP})+$"
)


def strip_fillers(text: str | None) -> str:
    """The message without leading greetings/fillers and trailing thanks; "" when nothing else is in it."""
    core = unicodedata.normalize("NFKC", text or "").strip()
    for _ in range(8):  # "喂 喂 你好 我跟你说 …": a few rounds at most
        stripped = _LEADING.sub("", core, count=1)
        if stripped == core:
            break
        core = stripped
    core = _TRAILING.sub("", core)
    return core.strip(" \t\r\n,，。.!！~～…、")


def is_greeting_only(text: str | None) -> bool:
    """True when the message is a greeting and nothing that asks for anything ("喂 你好", "在吗")."""
    return bool(text and text.strip()) and not strip_fillers(text) and bool(_GREETING_ANY.search(text or ""))


def is_thanks_only(text: str | None) -> bool:
    """True when the message only thanks or applauds ("谢谢", "🙏", "👍👍", "辛苦了")."""
    cleaned = (text or "").strip()
    if not cleaned:
        return False
    if _ACK_ONLY.match(cleaned):
        return True
    return not strip_fillers(cleaned) and bool(_THANKS_ANY.search(cleaned))
