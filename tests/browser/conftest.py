"""Fixtures for the Chromium tests in this folder: one real app on a real port per module (SQLite, migrated),
seeded with a case in every state a page family shows, and one browser per module.

Every page of the site that a person can open is listed in ``PageSet.pages`` (public, resident, survey,
volunteer, staff by role, error pages), so the accessibility checks cover every route family and role."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from bot import keys
from bot.app import create_app
from bot.cases.access import create_staff
from bot.cases.numbering import create_case
from bot.db import migrate, transaction
from bot.delivery.links import sign_link
from bot.models import CaseEvent, InboundMessage, Notice, Offer, Resident, Resource, Survey
from bot.settings import Settings
from tests.helpers import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = ROOT / "test-artifacts"
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Dongguan
PASSWORD = "Passw0rd!x"
LINK_SECRET = "l" * 40
TOWN = "厚街镇"
LATEST = "门口有两级台阶，轮椅推不进来，能不能顺便帮忙看看"

needs_chromium = (
    pytest.mark.browser
)  # tests/conftest.py require_chromium: a skip, or a failure under CI_STRICT


@dataclass
class Site:
    app: web.Application
    base: str
    wish_no: str = ""
    project_no: str = ""
    resident_token: str = ""
    survey_token: str = ""
    offer_pending: str = ""
    offer_mine: str = ""
    tasks_token: str = ""
    notice_id: int = 0
    resource_key: str = "R001"
    #: (name, path, role) — role is None (anyone), "staff" (town staff) or "admin" (city admin)
    pages: list[tuple[str, str, str | None]] = field(default_factory=list)


def _token(kind: str, subject: int) -> str:
    # a long life: the resident view checks expiry against the real clock, the others against the app clock
    return sign_link(LINK_SECRET, kind, subject, ttl=3650 * 86400, now=NOW.timestamp())


async def _seed(site: Site) -> None:
    async with transaction(site.app[keys.SESSIONS]) as db:
        worker = await create_staff(
            db, username="hj-staff", password=PASSWORD, role="town_staff", town=TOWN, display_name="厚街小陈"
        )
        await create_staff(db, username="city-admin", password=PASSWORD, role="admin", town=None)
        resident = Resident(openid="o-a11y-resident", phone="13812345678")
        db.add(resident)
        await db.flush()
        assert resident.id
        wish = await create_case(
            db,
            kind="micro_wish",
            description="奶奶中风后走不了路，想申请一辆轮椅，家住二楼",
            town=TOWN,
            resident_id=resident.id,
            item="轮椅",
            category="助残",
            community="新围社区",
            address="新围村三巷8号",
            beneficiary="陈奶奶",
            now=NOW - timedelta(days=2),
        )
        wish.status = "claimed"
        wish.claimed_by_id = worker.id
        project = await create_case(
            db,
            kind="micro_project",
            description="巷口路灯坏了，晚上老人出门看不清路",
            town=TOWN,
            resident_id=resident.id,
            community="新围社区",
            now=NOW - timedelta(days=1),
        )
        project.status = "completed"
        await db.flush()
        assert wish.id and project.id
        db.add(
            CaseEvent(
                case_id=wish.id,
                at=NOW - timedelta(hours=5),
                actor_type="staff",
                kind="question",
                note="请问家门口的门宽大约多少厘米？",
            )
        )
        db.add(
            CaseEvent(
                case_id=wish.id,
                at=NOW - timedelta(hours=4),
                actor_type="resident",
                kind="answer",
                note="大概八十厘米",
            )
        )
        for i, text in enumerate(["喂 你好 我奶奶走不了路 想要个轮椅", "大概八十厘米", LATEST]):
            db.add(
                InboundMessage(
                    delivery_key=f"a11y-{i}",
                    openid=resident.openid,
                    resident_id=resident.id,
                    msg_type="text",
                    text=text,
                    case_id=wish.id,
                    reply_mode="none",
                    received_at=NOW - timedelta(hours=6 - i),
                )
            )
        resources = []
        for n in range(5):
            r = Resource(
                key=f"R00{n + 1}",
                kind="individual",
                name=f"爱心人士{n + 1}",
                contact=f"联系人{n + 1}",
                phone=f"1380000111{n}",
                openid=f"o-a11y-vol-{n}" if n % 2 == 0 else None,
                categories=["助残"],
                items=["轮椅"],
                home_town=TOWN,
                towns_served=[TOWN],
                created_at=NOW,
                updated_at=NOW,
            )
            db.add(r)
            resources.append(r)
        await db.flush()
        pending = Offer(
            case_id=wish.id,
            resource_id=resources[0].id or 0,
            status="offered",
            offered_at=NOW - timedelta(hours=1),
            deadline=NOW + timedelta(hours=20),
        )
        # the accepted offer belongs to another wish so the first wish still shows its candidates
        other = await create_case(
            db,
            kind="micro_wish",
            description="想要一台助听器",
            town=TOWN,
            resident_id=resident.id,
            item="助听器",
            category="助残",
            now=NOW,
        )
        other.status = "dispatched"
        await db.flush()
        mine = Offer(
            case_id=other.id or 0,
            resource_id=resources[0].id or 0,
            status="accepted",
            offered_at=NOW - timedelta(hours=3),
            answered_at=NOW - timedelta(hours=2),
        )
        db.add_all([pending, mine])
        survey = Survey(
            case_id=project.id,
            resident_id=resident.id,
            status="sent",
            sent_at=NOW,
            deadline=NOW + timedelta(days=3),
        )
        db.add(survey)
        notice = Notice(
            title="厚街镇助残微心愿征集",
            body="本月征集轮椅、助听器等助残物品。\n欢迎报名。",
            town=TOWN,
            published_at=NOW,
        )
        db.add(notice)
        await db.flush()
        site.wish_no, site.project_no = wish.case_no, project.case_no
        site.resident_token = _token("my_cases", resident.id)
        site.survey_token = _token("survey", survey.id or 0)
        site.offer_pending = _token("offer", pending.id or 0)
        site.offer_mine = _token("offer", mine.id or 0)
        site.tasks_token = _token("tasks", resources[0].id or 0)
        site.notice_id = notice.id or 0
    site.pages = [
        ("public-home", "/public", None),
        ("public-notices", "/public/notices", None),
        ("public-notice", f"/public/notices/{site.notice_id}", None),
        ("resident-cases", f"/my/cases?t={site.resident_token}", None),
        ("resident-case", f"/my/cases/{site.wish_no}?t={site.resident_token}", None),
        ("survey", f"/survey/{site.survey_token}", None),
        ("volunteer-offer", f"/v/offer/{site.offer_pending}", None),
        ("volunteer-offer-accepted", f"/v/offer/{site.offer_mine}", None),
        ("volunteer-tasks", f"/v/tasks?t={site.tasks_token}", None),
        ("staff-login", "/staff/login", None),
        ("staff-queue", "/staff/cases", "staff"),
        ("staff-case", f"/staff/cases/{site.wish_no}", "staff"),
        ("staff-case-done", f"/staff/cases/{site.project_no}", "staff"),
        ("staff-new", "/staff/cases/new", "staff"),
        ("staff-account", "/staff/account", "staff"),
        ("staff-outbox", "/staff/outbox", "staff"),
        ("staff-pool", "/staff/pool", "staff"),
        ("staff-pool-resource", f"/staff/pool/{site.resource_key}", "staff"),
        ("staff-pool-import", "/staff/pool/import", "admin"),
        ("staff-batch", "/staff/batch", "admin"),
        ("staff-stats", "/staff/stats", "admin"),
        ("staff-notices", "/staff/notices", "admin"),
        ("staff-audit", "/staff/audit", "admin"),
        ("admin-staff", "/staff/admin/staff", "admin"),
        ("admin-categories", "/staff/admin/categories", "admin"),
        ("admin-deadlines", "/staff/admin/deadlines", "admin"),
        ("error-404", "/no-such-page", None),
        ("error-403", "/my/cases?t=forged", None),
        ("error-405", f"/staff/cases/{site.wish_no}/phone", "staff"),
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    tmp = tmp_path_factory.mktemp("a11y")
    url = f"sqlite+aiosqlite:///{tmp / 'site.sqlite3'}"
    await migrate(url)
    settings = Settings(
        environment="test",
        database_url=url,
        session_secret="s" * 40,
        link_secret=LINK_SECRET,
        scheduler_enabled=False,
        rasa_url="http://127.0.0.1:9",
        data_dir=tmp,
    )
    app = create_app(settings, clock=lambda: NOW, run_migrations=False, with_scheduler=False)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    s = Site(app=app, base=f"http://127.0.0.1:{port}")
    await _seed(s)
    yield s
    await runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        await b.close()


async def signed_in_state(browser: Any, site: Site, username: str) -> dict[str, Any]:
    """The cookies of a session signed in through the real login form."""
    ctx = await browser.new_context()
    page = await ctx.new_page()
    await page.goto(f"{site.base}/staff/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda u: "/staff/login" not in u)
    state: dict[str, Any] = await ctx.storage_state()
    await ctx.close()
    return state


def require_axe() -> Path:
    if not AXE_JS.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed, so axe-core cannot be (run scripts/setup.sh)")
        raise AssertionError(f"{AXE_JS} is missing: run scripts/setup.sh (npm ci installs axe-core)")
    return AXE_JS


__all__ = ["ARTIFACTS", "LATEST", "NOW", "Site", "needs_chromium", "require_axe", "signed_in_state"]
