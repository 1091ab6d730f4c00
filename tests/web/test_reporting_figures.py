"""What supervisors read on the statistics page and in its workbooks, through the real app: readable sheets
(bold frozen headers, fitted columns), frequent words that name needs and never people, and an accept rate that
pending invitations do not inflate."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import openpyxl
import pytest

from bot import keys
from bot.db import transaction
from bot.models import Offer
from tests.factories import NOW, PASSWORD, TOWN, mk_resource, mk_staff, mk_wish
from tests.helpers import app_client, csrf, login

EARLIER = NOW - timedelta(hours=1)  # inside "this month so far" (China time) of the app's clock
LONG_ITEM = "可折叠轻便电动轮椅带坐便"  # 12 Chinese characters: 24 columns wide

#: (description, beneficiary): residents' words with the junk and the names a word count must not show
DESCRIPTIONS = [
    ("喂 你好 我妈黄桂芳瘫在床上好几年了 下不了床 想要一辆轮椅", "黄桂芳"),
    ("奶奶腿脚不好走不了路 想要一辆轮椅 电话13812345678", "陈秀英"),
    ("给陈秀英老人买一辆轮椅 她下不了楼", None),
    ("独居老人需要助听器 住樟木头镇 李建国", "李建国"),
    ("家里老人耳朵听不见 要个助听器", None),
]


@pytest.fixture
async def client(db_url, tmp_path, aiohttp_client):
    return await app_client(db_url, tmp_path, aiohttp_client, now=NOW)


async def sign_in(client, username: str = "sup") -> str:
    async with transaction(client.app[keys.SESSIONS]) as db:
        await mk_staff(db, username, "town_supervisor", town=TOWN)
    return await login(client, username, PASSWORD)


async def export(client, path: str):
    resp = await client.post(path, data={"csrf_token": await csrf(client, "/staff/stats")})
    assert resp.status == 200, await resp.text()
    return openpyxl.load_workbook(io.BytesIO(await resp.read()))


async def seed_descriptions(client) -> None:
    async with transaction(client.app[keys.SESSIONS]) as db:
        for i, (text, beneficiary) in enumerate(DESCRIPTIONS):
            case = await mk_wish(
                db, now=EARLIER, item=LONG_ITEM if i == 0 else "轮椅", phone=f"1390000{i:04d}"
            )
            case.description = text
            case.beneficiary = beneficiary


# ------------------------------------------------------------------ readable workbooks
@pytest.mark.parametrize("path", ["/staff/stats/export.xlsx", "/staff/archive.xlsx"])
async def test_every_sheet_has_a_bold_frozen_header_and_fitted_columns(client, path):
    await seed_descriptions(client)
    await sign_in(client)
    wb = await export(client, path)
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        assert all(c.font.b for c in ws[1] if c.value is not None), ws.title
        assert ws.column_dimensions["A"].width and ws.column_dimensions["A"].width >= 6, ws.title
    if "archive" in path:
        header = [c.value for c in wb["诉求"][1]]
        letter = openpyxl.utils.get_column_letter(header.index("诉求内容") + 1)
        assert wb["诉求"].column_dimensions[letter].width >= 40
    else:
        # the item column is at least as wide as the longest item (Chinese characters count twice)
        assert wb["需求物品"].column_dimensions["A"].width >= 2 * len(LONG_ITEM)


# ------------------------------------------------------------------ 高频词
def words_on_page(html: str) -> list[str]:
    ul = re.search(r'<ul class="words" id="words">(.*?)</ul>', html, re.S)
    assert ul, html[:300]
    return [w.strip() for w in re.findall(r"<li>([^<]+)<small", ul.group(1))]


async def test_frequent_words_name_needs_not_junk_and_never_people(client):
    await seed_descriptions(client)
    await sign_in(client)
    page_words = words_on_page(await (await client.get("/staff/stats")).text())
    wb = await export(client, "/staff/stats/export.xlsx")
    sheet_words = [row[0] for row in list(wb["高频词"].iter_rows(values_only=True))[1:]]
    for words in (page_words, sheet_words):
        assert words[:2] == ["轮椅", "助听器"], words  # what people asked for, most often first
        for junk in ("不了", "一辆", "好几年", "你好", "想要", "下不了", "13812345678", "138****5678"):
            assert junk not in words, (junk, words)
        for person in ("黄桂芳", "陈秀英", "李建国", "桂芳", "秀英", "建国"):
            assert not any(person in w for w in words), (person, words)
        assert not any(re.search(r"\d", w) for w in words), words


# ------------------------------------------------------------------ 接受率
async def test_pending_invitations_do_not_count_in_the_accept_rate(client):
    async with transaction(client.app[keys.SESSIONS]) as db:
        case = await mk_wish(db, now=EARLIER, status="matching")
        for i, status in enumerate(["accepted", "declined", "offered", "offered", "offered"]):
            r = await mk_resource(db, f"R{i}", phone=f"1380000{i:04d}")
            db.add(Offer(case_id=case.id, resource_id=r.id, status=status, offered_at=EARLIER))
    await sign_in(client)
    html = await (await client.get("/staff/stats")).text()
    figure = {
        k: re.search(rf'id="{k}">([^<]*)<', html) for k in ("accept-rate", "answered", "accepted", "pending")
    }
    assert all(figure.values()), figure
    values = {k: m.group(1) for k, m in figure.items() if m}
    # 1 accepted of 2 answered: 50%, whatever the three invitations still waiting will say
    assert values == {"accept-rate": "50.0%", "answered": "2", "accepted": "1", "pending": "3"}
    wb = await export(client, "/staff/stats/export.xlsx")
    summary = {row[0]: row[1] for row in wb["概况"].iter_rows(values_only=True)}
    assert summary["邀请待答复"] == 3 and summary["资源接受率（接受÷已答复）"] == "50.0%"
