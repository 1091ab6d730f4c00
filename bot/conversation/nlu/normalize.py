"""Slot normalisation shared by the Rasa client and the keyword interpreter.

Everything here is pure and deterministic: towns (full names from short forms, variants and common typos,
also inside a sentence), quantities in Chinese or Arabic numerals, phone numbers, case numbers, survey scores
and the category suggested to staff for a new case.
"""

from __future__ import annotations

import re
import unicodedata

import cn2an

from bot.conversation.nlu.beneficiary import find_beneficiary as find_beneficiary  # re-exported
from bot.conversation.nlu.hant import simplified
from bot.conversation.nlu.things import THINGS
from reference import towns
from reference.case_numbers import SERIAL

# --- towns ---------------------------------------------------------------------------------------------------

# Variants residents actually write: homophone typos from pinyin input and speech recognition, the Cantonese
# reading of 涌 (chung), older names. Each maps to the full name.
_TOWN_TYPOS: dict[str, tuple[str, ...]] = {
    "莞城街道": ("莞城区", "管城", "莞成"),
    "南城街道": ("南城区",),
    "东城街道": ("东城区",),
    "万江街道": ("万江区", "万将"),
    "石碣镇": ("石竭", "石揭", "石结"),
    "石龙镇": ("石笼",),
    "茶山镇": ("查山",),
    "石排镇": ("石牌镇",),
    "企石镇": ("企实", "起石"),
    "横沥镇": ("横历", "横力", "衡沥"),
    "桥头镇": ("乔头",),
    "谢岗镇": ("谢冈", "谢港"),
    "东坑镇": ("东坑镇区",),
    "常平镇": ("长平镇", "常坪"),
    "寮步镇": ("辽步", "廖步", "寮埗", "聊步"),
    "樟木头镇": ("樟木头", "章木头", "漳木头", "樟木投", "张木头", "樟木"),
    "大朗镇": ("大郎", "大浪镇"),
    "黄江镇": ("黄冈镇", "黄姜"),
    "清溪镇": ("青溪", "清西", "清夕"),
    "塘厦镇": ("塘下", "唐厦", "塘夏", "糖厦"),
    "凤岗镇": ("凤冈", "凤港", "风岗"),
    "大岭山镇": ("大岭山", "大领山", "大岭"),
    "长安镇": ("长按镇", "常安"),
    "虎门镇": ("虎们", "沪门", "太平镇"),
    "厚街镇": ("後街", "后街镇", "厚接", "候街"),
    "沙田镇": ("莎田",),
    "道滘镇": ("道窖", "道教镇", "道㳇", "道觉"),
    "洪梅镇": ("鸿梅", "洪眉"),
    "麻涌镇": ("麻冲", "马涌", "麻甬"),
    "望牛墩镇": ("望牛敦", "望牛顿", "望牛墪"),
    "中堂镇": ("中塘", "忠堂"),
    "高埗镇": ("高步", "高埠", "高部", "高埔"),
    "松山湖": ("松山湖园区", "松山湖高新区", "松湖", "松山湖片区", "松山湖科技园"),
}


def _build_town_variants() -> dict[str, str]:
    variants: dict[str, str] = {}
    for town in towns.TOWNS:
        variants[town.name] = town.name
        variants[town.short] = town.name
        for suffix in ("镇", "街道", "区"):
            variants.setdefault(town.short + suffix, town.name)
        for typo in _TOWN_TYPOS.get(town.name, ()):
            variants.setdefault(typo, town.name)
            if len(typo) <= 3 and not typo.endswith(("镇", "区")):
                variants.setdefault(typo + "镇", town.name)
    return variants


TOWN_VARIANTS: dict[str, str] = _build_town_variants()
_TOWN_RE = re.compile("|".join(sorted((re.escape(v) for v in TOWN_VARIANTS), key=len, reverse=True)))
# Words that contain a town short form but are not about that town.
_NOT_TOWN = re.compile(
    r"长安街|沙田区|沙田站|香港沙田|后街小巷|大浪淘沙|樟木箱|樟木柜|黄冈市|黄冈中学|北京长安"
)


def _clean(text: str) -> str:
    # traditional characters as simplified (same length): 虎門 is 虎门镇, 兩個 is 2
    return simplified(unicodedata.normalize("NFKC", text or "").strip())


def find_town(text: str) -> str | None:
    """The first town named anywhere in the text (full name), or None."""
    cleaned = _NOT_TOWN.sub(lambda m: " " * len(m.group()), _clean(text))
    match = _TOWN_RE.search(cleaned)
    return TOWN_VARIANTS[match.group()] if match else None


def find_towns(text: str) -> list[str]:
    """Every distinct town named in the text, in order of appearance."""
    cleaned = _NOT_TOWN.sub(lambda m: " " * len(m.group()), _clean(text))
    found: list[str] = []
    for match in _TOWN_RE.finditer(cleaned):
        name = TOWN_VARIANTS[match.group()]
        if name not in found:
            found.append(name)
    return found


def town_mentions(text: str) -> list[tuple[int, str]]:
    """(position, full name) of every town mention, in order ("在凤岗 哦不对 是清溪" → two mentions)."""
    cleaned = _NOT_TOWN.sub(lambda m: " " * len(m.group()), _clean(text))
    return [(m.start(), TOWN_VARIANTS[m.group()]) for m in _TOWN_RE.finditer(cleaned)]


def normalize_town(text: str) -> str | None:
    """Full town name for a short form, variant or typo (or a sentence naming one); None when none is named."""
    cleaned = re.sub(r"\s+", "", _clean(text)).removeprefix("东莞市").removeprefix("东莞")
    if cleaned in TOWN_VARIANTS:
        return TOWN_VARIANTS[cleaned]
    return find_town(cleaned)


# --- quantities ----------------------------------------------------------------------------------------------

_CN_DIGITS = "零〇一二两三四五六七八九十百千万廿"
_CLASSIFIERS = (
    "台|个|袋|斤|公斤|件|张|箱|桶|套|辆|副|本|瓶|盏|条|包|床|双|部|把|只|支|处|块|米|位|名|户|份|盒|罐|"
    "对|根|座|间|层|节|次|趟|顶|架|捆|提|册|支|枚|辆|口|人"
)
_QTY_RE = re.compile(rf"(\d+|[{_CN_DIGITS}]+)\s*(?:{_CLASSIFIERS})")
_BARE_NUMBER_RE = re.compile(rf"^\s*(\d+|[{_CN_DIGITS}]+)\s*$")


def _to_int(numeral: str) -> int | None:
    if numeral.isdigit():
        return int(numeral)
    try:
        value = cn2an.cn2an(numeral, "smart")
    except (ValueError, KeyError, IndexError):
        return None
    return int(value) if value == int(value) else None


def parse_quantity(text: str) -> int | None:
    """The quantity in '两台' / '三袋' / '一百斤' / '5个' / '3' — None when there is none."""
    cleaned = _clean(text)
    for match in (_QTY_RE.search(cleaned), _BARE_NUMBER_RE.match(cleaned)):
        if match:
            value = _to_int(match.group(1))
            if value is not None and value > 0:
                return value
    return None


# --- items and beneficiaries --------------------------------------------------------------------------------

# Things residents ask for or report, longest first so "电动轮椅" wins over "轮椅". Single characters (米, 油, 被)
# only count in the loose reading used by the keyword interpreter; the strict one backs up the model.
ITEMS: tuple[str, ...] = tuple(
    """
轮椅 拐杖 手杖 拐棍 助行器 助听器 护理床 坐便椅 坐厕椅 沐浴椅 助浴椅 洗澡椅 制氧机 血压计 血糖仪 体温计 血氧仪
雾化器 雾化机 老花镜 眼镜 放大镜 假牙 假肢 盲杖 纸尿裤 尿片 尿不湿 护理垫 床垫 气垫床 防褥疮垫 紧急呼叫器 呼叫器
定位器 防走失手环 护腰 护膝 药品 营养品 奶粉 牛奶 维生素 钙片 蛋白粉 按摩椅 防滑垫 扶手
书包 文具 课本 练习册 教辅 课外书 字典 词典 电脑 笔记本电脑 手提电脑 平板 平板电脑 台灯 书桌 书台 书柜 书架 校服
校鞋 学习用品 打印机 计算器
大米 食用油 花生油 面粉 挂面 鸡蛋 饼干 粮油 年货 月饼
棉被 被子 冬衣 棉衣 羽绒服 衣服 棉鞋 鞋子 毛毯 毯子 蚊帐 枕头 碌架床 上下床 衣柜 桌子 凳子 椅子 躺椅 沙发
电风扇 风扇 空调 冰箱 雪柜 洗衣机 热水器 电饭煲 电饭锅 电磁炉 微波炉 煤气炉 煤气灶 电视 电视机 收音机 老人机
暖风机 取暖器 电暖器 电热毯 热水壶 电水壶 抽油烟机 煤气罐 净水器 饮水机 门锁 防盗门 窗帘 灯泡 灯管 插座 马桶 坐厕
探访 陪诊 陪护 护工 保姆 家政 送餐 送饭 送药 理发 助浴 打扫卫生 补习 心理辅导 心理咨询 康复训练 法律援助 助学金
职业培训 技能培训 就业培训 上门维修 体检 义诊 接送
路灯 减速带 斑马线 红绿灯 人行道 沙井盖 井盖 渠盖 下水道 排水沟 排水渠 化粪池 公共厕所 垃圾桶 监控 摄像头 雨棚 坡道
无障碍坡道 无障碍通道 凉亭 遮雨棚 长椅 石凳 座椅 健身器材 篮球架 篮板 乒乓球台 护栏 栏杆 挡土墙 电梯 指示牌 路牌 标志牌
宣传栏 信箱 报箱 地砖 灯胆 消防通道 消防栓 灭火器 候车亭 充电桩 单车棚 晾衣架 滑梯 秋千 凸面镜 反光镜 感应灯 声控灯
""".split()
)
ITEMS += tuple(w for w in THINGS if w not in ITEMS)  # the same lexicon's breadth, by kind (nlu/things.py)
_LOOSE_ITEMS = ("米", "油", "凳子", "凳", "被")
_ITEM_STRICT_RE = re.compile("|".join(sorted(map(re.escape, ITEMS), key=len, reverse=True)))
_ITEM_LOOSE_RE = re.compile("|".join(sorted(map(re.escape, ITEMS + _LOOSE_ITEMS), key=len, reverse=True)))
_BENEFICIARY_WORDS = (
    "独居老人 空巢老人 孤寡老人 留守儿童 残疾人 伤残人士 老人家 老人 长者 阿婆 阿公 阿伯 阿嫲 阿爷 阿嬷 婆婆 公公 "
    "爷爷 奶奶 嫲嫲 外婆 外公 老爸 老妈 老豆 阿妈 阿爸 我爸 我妈 父亲 母亲 孩子 小孩 细路 仔女 儿子 女儿 孙子 孙女 "
    "孙仔 外孙 弟弟 妹妹 哥哥 姐姐 细佬 家姐 老伴 学生 低保户 困难户 单亲妈妈 邻居 老公 老婆"
).split()
# person words and statuses a model may tag as a thing (find_beneficiary, in beneficiary.py, reads the recipient)
BENEFICIARY_RE = re.compile("|".join(sorted(map(re.escape, _BENEFICIARY_WORDS), key=len, reverse=True)))


def find_items(text: str, *, loose: bool = False) -> list[str]:
    """The things named in the text, in order, without repeats ("家里要一张棉被和大米" → 棉被, 大米)."""
    regex = _ITEM_LOOSE_RE if loose else _ITEM_STRICT_RE
    return list(dict.fromkeys(m.group() for m in regex.finditer(_clean(text))))


# --- case numbers --------------------------------------------------------------------------------------------

_CASE_RE = re.compile(rf"(?<![A-Za-z])MS\s*[-－]?\s*(\d{{8}})\s*[-－—_ ]?\s*({SERIAL})", re.IGNORECASE)


def find_case_no(text: str) -> str | None:
    """A case number such as MS20261123-0007 (also written lower case or without the dash), upper-cased."""
    return split_case_no(text)[0]


def split_case_no(text: str) -> tuple[str | None, str]:
    """The case number in ``text`` (as ``find_case_no``) and the words around it; (None, ``text``) when none."""
    cleaned = _clean(text)
    match = _CASE_RE.search(cleaned)
    if match is None:
        return None, text
    return f"MS{match.group(1)}-{match.group(2)}", cleaned[: match.start()] + cleaned[match.end() :]


# --- satisfaction scores -------------------------------------------------------------------------------------

_SCORE_WORDS: tuple[tuple[str, int], ...] = (
    (r"非常不满意|很不满意|极不满意|十分不满意|特别不满意|非常差|很差劲|太差|极差|差评|垃圾|零分", 1),
    (r"不太满意|不满意|不怎么样|不好|较差|有点差|比较差", 2),
    (r"一般般|一般|还行|马马虎虎|凑合|过得去|中评|麻麻地", 3),
    (r"非常满意|很满意|十分满意|特别满意|超级满意|满分|好评|非常好|太好了|好正|非常感谢", 5),
    (r"满意|挺好|不错|几好|好好|可以", 4),
)
_SCORE_DIGIT_RE = re.compile(r"(?<!\d)([1-5])(?:\s*(?:分|星|颗星)?)(?!\d)")
_SCORE_CN_RE = re.compile(r"([一二两三四五])\s*(?:分|星|颗星)")
_CN_SCORE = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}


def parse_score(text: str) -> int | None:
    """A 1–5 satisfaction score from '5', '五分', '4星', '很满意' (5), '满意' (4), '一般' (3), '不满意' (2),
    '很不满意'/'非常差' (1); None when the text holds no score."""
    cleaned = _clean(text)
    if not cleaned:
        return None
    digit = _SCORE_DIGIT_RE.search(cleaned)
    if digit and (len(cleaned) <= 6 or re.search(r"[1-5]\s*(分|星)", cleaned)):
        return int(digit.group(1))
    chinese = _SCORE_CN_RE.search(cleaned)
    if chinese:
        return _CN_SCORE[chinese.group(1)]
    if cleaned in _CN_SCORE:
        return _CN_SCORE[cleaned]
    for pattern, score in _SCORE_WORDS:
        if re.search(pattern, cleaned):
            return score
    return None


# --- categories ----------------------------------------------------------------------------------------------

WISH_CATEGORIES: tuple[str, ...] = (
    "助学",
    "助医",
    "助老",
    "助残",
    "生活物资",
    "就业帮扶",
    "心理关爱",
    "其他",
)
PROJECT_CATEGORIES: tuple[str, ...] = (
    "道路交通",
    "照明",
    "公共设施",
    "环境卫生",
    "文体设施",
    "安全隐患",
    "其他",
)

# Ordered: the first category whose keywords match wins, so the more specific lists come first.
_WISH_KEYWORDS: tuple[tuple[str, str], ...] = (
    (
        "助残",
        r"轮椅|助听器|耳蜗|拐杖|假肢|助行器|代步车|盲杖|残疾|残障|伤残|聋|哑|盲人|失明|瘫|半身不遂|截肢|"
        r"智力障碍|自闭|视力障碍|助残|坐便椅|沐浴椅|护理床|听力",
    ),
    (
        "就业帮扶",
        r"工作|就业|找工|搵工|搵份工|失业|下岗|兼职|技能|培训|手艺|技术|上岗|招聘|打工|职业|开店|创业|考个证",
    ),
    (
        "心理关爱",
        r"心理|抑郁|焦虑|想不开|情绪|开导|开解|倾诉|倾下|聊聊|孤独|孤僻|内向|自杀|轻生|想不通|唔开心|"
        r"不开心|压力大|失眠|心事|发脾气|关心",
    ),
    (
        "助学",
        r"学费|书包|文具|课本|电脑|平板|网课|辅导|补习|功课|作业|上学|读书|学习|书桌|书台|台灯|校服|奖学|课外|"
        r"学生|考试|练习册|资料|字典|书籍|图书|学校|画具|读初中|读高|上初中|大学",
    ),
    (
        "助老",
        r"陪伴|陪聊|陪同|陪佢|陪他|陪她|陪|探访|探望|看看他|看看她|送饭|送餐|助餐|买菜|理发|剪头发|上门照顾|"
        r"帮手照顾|搞卫生|打扫|问候",
    ),
    (
        "助医",
        r"康复|治疗|医药|药费|医疗|住院|手术|看病|复诊|血压计|血糖|制氧|雾化|透析|洗肾|化疗|病|中风|药|体检|"
        r"假牙|牙|胰岛素|医院",
    ),
    (
        "生活物资",
        r"米|油|面|被|衣服|冬衣|风扇|空调|冰箱|洗衣机|热水器|电饭煲|电饭锅|煤气|炉|床|蚊帐|奶粉|尿片|"
        r"纸尿裤|食物|粮|家电|电视|凳|桌|柜|鞋|毛毯|微波炉|衣柜|生活物资|物资",
    ),
    ("助老", r"独居|空巢|孤寡|老人|老人家|阿婆|阿公|伯伯|婆婆|公公|长者|老年"),
)
_PROJECT_KEYWORDS: tuple[tuple[str, str], ...] = (
    (
        "照明",
        r"路灯|照明|灯坏|灯不亮|冇灯|没灯|无灯|没有灯|黑灯|太黑|好黑|黑漆漆|乌漆|太暗|好暗|灯光|亮灯|灯泡|灯管|"
        r"装灯|装个灯|装几盏灯|装几个灯|路灯杆",
    ),
    (
        "安全隐患",
        r"隐患|危险|井盖|塌|倒塌|漏电|电线|护栏|围栏|防护|消防|灭火|监控|摄像头|掉下|裂缝|危房|滑坡|"
        r"落石|溺水|坠落|跌落|松动|高空|摔|栏杆|要倒|歪了|塌方",
    ),
    (
        "环境卫生",
        r"垃圾|下水道|排水|渠|臭|污水|堵|积水|水浸|绿化|树|草|蚊|苍蝇|老鼠|卫生|厕所|公厕|化粪池|"
        r"清洁|清理|淤泥|沟|河涌|水渠|杂物|脏",
    ),
    (
        "道路交通",
        r"路|坑|减速带|斑马线|红绿灯|人行道|交通|过马路|车位|停车|桥|巷|路面|硬底化|铺|台阶|车站|"
        r"公交|站台|路口|限速",
    ),
    (
        "文体设施",
        r"篮球|乒乓|羽毛球|足球|健身|运动|球场|活动室|阅读|图书角|书屋|文化|舞台|广场舞|棋牌|器材|"
        r"儿童乐园|游乐|滑梯|秋千|跑道|体育",
    ),
    (
        "公共设施",
        r"扶手|凳|椅|长椅|座椅|坡道|无障碍|电梯|凉亭|雨棚|遮阳|信箱|宣传栏|指示牌|门牌|公共设施|"
        r"晾衣|充电桩|饮水|休息|亭|长廊",
    ),
)


#: the rules compiled once: passed as text, each search looked its pattern up in ``re``'s cache, and the cache,
#: shared with every other module, dropped and compiled them again (a tenth of a filed wish's NLU CPU)
_WISH_RULES = tuple((category, re.compile(pattern)) for category, pattern in _WISH_KEYWORDS)
_PROJECT_RULES = tuple((category, re.compile(pattern)) for category, pattern in _PROJECT_KEYWORDS)


def suggest_category(kind: str, text: str, item: str | None = None) -> str:
    """The category to suggest to staff for a case of this kind ("micro_wish" / "micro_project")."""
    rules = _WISH_RULES if kind == "micro_wish" else _PROJECT_RULES
    haystacks = [h for h in (_clean(item or ""), _clean(text)) if h]
    for haystack in haystacks:  # the item, when known, speaks louder than the rest of the sentence
        for category, pattern in rules:
            if pattern.search(haystack):
                return category
    return "其他"
