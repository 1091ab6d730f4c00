"""Demo data for `make run`: categories, the resource pool (~1,900), demo staff accounts and (development only)
the demo content of every page (bot.ops.demo_cases, bot.ops.demo_projects).

Idempotent: running it twice changes nothing. Deadline policies are seeded by bot.deadlines.sla."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import col

from bot.conversation.nlu.normalize import PROJECT_CATEGORIES, WISH_CATEGORIES
from bot.db import make_engine, make_sessions, migrate, transaction
from bot.models import Category, Resource, Staff, utcnow
from bot.settings import Settings

DEMO_COMMUNITY = "新围社区"  # the demo community worker's
#: demo accounts (development only): username, role, town, password
DEMO_STAFF: tuple[tuple[str, str, str | None, str], ...] = (
    ("houjie", "town_staff", "厚街镇", "houjie-demo-2026"),
    ("houjie_lead", "town_supervisor", "厚街镇", "houjie-demo-2026"),
    ("xinwei", "community_worker", "厚街镇", "xinwei-demo-2026"),  # 新围社区
    ("humen", "town_staff", "虎门镇", "humen-demo-2026"),
    ("city", "city_supervisor", None, "city-demo-2026"),
    ("admin", "admin", None, "admin-demo-2026"),
)


async def seed_categories(session: object) -> int:
    added = 0
    for kind, names in (("micro_wish", WISH_CATEGORIES), ("micro_project", PROJECT_CATEGORIES)):
        for sort, name in enumerate(names):
            exists = (
                await session.exec(  # type: ignore[attr-defined]
                    select(Category).where(col(Category.kind) == kind, col(Category.name) == name)
                )
            ).first()
            if exists is None:
                session.add(Category(kind=kind, name=name, sort=sort))  # type: ignore[attr-defined]
                added += 1
    return added


async def seed_pool(session: object, *, size: int) -> int:
    # lazy: demo data only: the generator and hashing load when seeding
    from matching.generator import generate_pool

    have = (await session.exec(select(func.count()).select_from(Resource))).scalar_one()  # type: ignore[attr-defined]
    if have:
        return 0
    for r in generate_pool(n=size):
        session.add(  # type: ignore[attr-defined]
            Resource(
                key=r.key,
                kind=r.kind,
                name=r.name,
                contact=r.contact,
                phone=r.phone or None,
                categories=sorted(r.categories),
                items=sorted(r.items),
                home_town=r.home_town,
                towns_served=sorted(r.towns_served),
                capacity_open=r.capacity_open,
                capacity_month=r.capacity_month,
                max_fund=r.max_fund,
                available=r.available,
                active=r.active,
                offers=r.offers,
                accepts=r.accepts,
                declines=r.declines,
                timeouts=r.timeouts,
                completions=r.completions,
                rating_sum=r.rating_sum,
                rating_count=r.rating_count,
            )
        )
    return size


async def seed_staff(session: object) -> list[str]:
    # lazy: demo data only: the generator and hashing load when seeding
    from bot.cases.access import hash_password

    # lazy: demo data only: the registry is read for the community worker's community
    from bot.cases.communities import resolve

    made = []
    for username, role, town, password in DEMO_STAFF:
        exists = (await session.exec(select(Staff).where(col(Staff.username) == username))).first()  # type: ignore[attr-defined]
        if exists is None:
            community = None
            if role == "community_worker" and town:
                community = await resolve(session, town=town, name=DEMO_COMMUNITY)  # type: ignore[arg-type]
            session.add(  # type: ignore[attr-defined]
                Staff(
                    username=username,
                    display_name=username,
                    role=role,
                    town=town,
                    community_id=community.id if community else None,
                    community=community.name if community else None,
                    password_hash=hash_password(password),
                )
            )
            made.append(username)
    return made


async def seed_demo(sessions: object) -> str:
    """The demo's content (bot.ops.demo_cases, bot.ops.demo_projects), once: the demo API client marks it done."""
    # lazy: demo data only: the demo modules load the wall, project and fund domains
    from bot.ops import demo_cases, demo_projects

    async with transaction(sessions) as session:  # type: ignore[arg-type]
        if await demo_cases.already_seeded(session):
            return ", demo content unchanged"
        now = utcnow()
        await demo_projects.seed_projects(session, now=now)
        await demo_cases.seed_wall(session, now=now)
        await demo_cases.seed_town_work(session, now=now)
        made = await demo_cases.seed_warnings(session, now=now)
        made += await demo_cases.seed_history(session, now=now)
        await demo_cases.seed_api_client(session, now=now)
    return f", demo content ({made} cases over a year, wall, projects, funds, calls, API key)"


async def seed(settings: Settings, *, pool_size: int = 1900, demo_staff: bool | None = None) -> str:
    await migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        sessions = make_sessions(engine)
        async with transaction(sessions) as session:
            cats = await seed_categories(session)
            try:
                # lazy: demo data only: the generator and hashing load when seeding
                from bot.deadlines.sla import seed_policies
            except ImportError:  # deadlines not installed in this build
                policies = 0
            else:
                policies = await seed_policies(session)
        async with transaction(sessions) as session:
            pool = await seed_pool(session, size=pool_size)
        staff: list[str] = []
        demo = ""
        if demo_staff if demo_staff is not None else settings.environment == "development":
            async with transaction(sessions) as session:
                staff = await seed_staff(session)
            demo = await seed_demo(sessions)
    finally:
        await engine.dispose()
    return f"seeded: {cats} categories, {policies} deadline policies, {pool} resources, staff {staff or 'unchanged'}{demo}"
