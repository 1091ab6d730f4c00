"""A case's title: what is needed and for whom ("轮椅 · 给母亲", "大米 × 2 · 给老人"), never the filler a message
opened with. Pure: imports nothing from the application, so the model, the chat and every page use the same rule."""

from __future__ import annotations

import re

#: how residents name the person the help is for → how a title names them
BENEFICIARY_TITLE: dict[str, str] = {
    **dict.fromkeys(("我妈", "妈妈", "阿妈", "老妈", "妈", "母亲", "我母亲", "老母"), "母亲"),
    **dict.fromkeys(("我爸", "爸爸", "阿爸", "老爸", "老豆", "爸", "父亲", "我父亲", "老窦"), "父亲"),
    **dict.fromkeys(("奶奶", "阿嫲", "嫲嫲"), "奶奶"),
    **dict.fromkeys(("爷爷", "阿爷"), "爷爷"),
    **dict.fromkeys(("外婆", "姥姥"), "外婆"),
    **dict.fromkeys(("外公", "姥爷"), "外公"),
    **dict.fromkeys(("老公", "丈夫"), "丈夫"),
    **dict.fromkeys(("老婆", "妻子"), "妻子"),
    **dict.fromkeys(("孩子", "小孩", "细路", "细佬哥", "小朋友"), "孩子"),
    **dict.fromkeys(("儿子", "仔", "个仔"), "儿子"),
    **dict.fromkeys(("女儿", "女", "个女"), "女儿"),
    **dict.fromkeys(("老人", "老人家", "长者", "老年人"), "老人"),
}
_OPENERS = re.compile(
    r"^(喂+|你好|您好|在吗|哈喽|我跟你说|麻烦问一下|请问|那个|哎|唉|嗯+|就是)[\s,，。!！、]*"
)
_CLAUSE = re.compile(r"[，,。.!！?？；;\s]+")


#: what residents read instead of the office's word for a status ("已归档" is filing; for them the case is done)
RESIDENT_WORDS: dict[str, str] = {"closed": "已办结"}


def resident_labels(labels: dict[str, str]) -> dict[str, str]:
    """The lifecycle's status labels as residents read them."""
    return {**labels, **RESIDENT_WORDS}


def beneficiary_label(beneficiary: str | None) -> str | None:
    if not beneficiary or not beneficiary.strip():
        return None
    b = beneficiary.strip()
    return BENEFICIARY_TITLE.get(b) or BENEFICIARY_TITLE.get(b.removeprefix("我")) or b


def case_title(
    *,
    item: str | None,
    quantity: int | None = None,
    beneficiary: str | None = None,
    description: str | None = None,
    limit: int = 16,
) -> str:
    """ "轮椅 · 给母亲"; without an item, the first words of the description (after any greeting)."""
    who = beneficiary_label(beneficiary)
    if item and item.strip():
        what = item.strip() + (f" × {quantity}" if quantity and quantity > 1 else "")
    else:
        text = (description or "").strip()
        for _ in range(4):
            stripped = _OPENERS.sub("", text)
            if stripped == text:
                break
            text = stripped
        clauses = [c for c in _CLAUSE.split(text) if c]
        what = clauses[0] if clauses else text
        if len(what) > limit:
            what = what[: limit - 1] + "…"
    return f"{what} · 给{who}" if who else what
