"""The registry of communities (村/社区) per town: listing, adding, renaming, deactivating, CSV import, mapping
free-text community values to registry rows, and the community QR codes (scene ``c:<id>``) residents scan.

Cases, staff accounts and resources refer to a community by id; the free-text ``community`` column beside the id
keeps the name for display and old exports. Name rules and the CSV parser live in ``reference/communities.py``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Case, Community, Resident, Staff
from bot.refcache import cached
from reference.communities import check_row, match, parse_csv

log = logging.getLogger(__name__)
SCENE_PREFIX = "c:"
#: how long a scan keeps pointing the resident's next case at the scanned community
SCAN_VALID = timedelta(days=7)


class CommunityError(Exception):
    """A refused change of the registry; the message is for staff, in Chinese."""


# ------------------------------------------------------------------ reading
async def list_town(session: AsyncSession, *, town: str, active_only: bool = True) -> list[Community]:
    q = select(Community).where(Community.town == town)
    if active_only:
        q = q.where(col(Community.active))
    return list(await session.exec(q.order_by(col(Community.name))))


async def by_town(session: AsyncSession, *, towns: list[str] | None = None) -> dict[str, list[Community]]:
    """Active communities grouped by town (for the forms' choices); ``towns`` limits the towns."""
    q = select(Community).where(col(Community.active))
    if towns is not None:
        q = q.where(col(Community.town).in_(towns))
    out: dict[str, list[Community]] = {}
    for c in await session.exec(q.order_by(col(Community.town), col(Community.name))):
        out.setdefault(c.town, []).append(c)
    return out


async def get_in_town(session: AsyncSession, *, community_id: int, town: str) -> Community:
    """The active community ``community_id`` of ``town``, or CommunityError (also for another town's id)."""
    c = await session.get(Community, community_id)
    if c is None or c.town != town or not c.active:
        raise CommunityError(f"请从{town}的村（社区）名单中选择")
    return c


async def resolve(session: AsyncSession, *, town: str, name: str | None) -> Community | None:
    """The registry row a free-text name stands for in ``town`` (exact name, else the one with the same stem)."""
    if not (name or "").strip():
        return None
    rows = await list_town(session, town=town, active_only=False)
    cid = match(town, name or "", {town: [(c.id or 0, c.name) for c in rows]})
    return next((c for c in rows if c.id == cid), None)


async def community_row(
    session: AsyncSession, *, town: str, community_id: int | None, name: str | None
) -> Community | None:
    """The registry row a new case or account refers to: ``community_id`` when given (it must be of ``town``),
    else the row the free-text ``name`` stands for (None when it stands for none: the text is kept alone)."""
    if community_id is not None:
        row = await session.get(Community, community_id)
        if row is None or row.town != town:
            raise CommunityError(f"请从{town}的村（社区）名单中选择")
        return row
    return await resolve(session, town=town, name=name)


# ------------------------------------------------------------------ writing
async def add_community(
    session: AsyncSession, *, town: str, name: str, kind: str, now: datetime
) -> Community:
    row, problem = check_row(town, name, kind)
    if row is None:
        raise CommunityError(problem or "格式不正确")
    exists = await session.exec(
        select(Community).where(Community.town == row.town, Community.name == row.name)
    )
    if exists.first() is not None:
        raise CommunityError(f"{row.town}已有{row.name}")
    c = Community(town=row.town, name=row.name, kind=row.kind, created_at=now, updated_at=now)
    session.add(c)
    await session.flush()
    return c


async def rename_community(
    session: AsyncSession, *, community: Community, name: str, kind: str, now: datetime
) -> str:
    """Rename (or re-type) a community; the display name on its cases and staff follows. Returns a summary."""
    row, problem = check_row(community.town, name, kind)
    if row is None:
        raise CommunityError(problem or "格式不正确")
    if row.name != community.name:
        clash = await session.exec(
            select(Community.id).where(Community.town == community.town, Community.name == row.name)
        )
        if clash.first() is not None:
            raise CommunityError(f"{community.town}已有{row.name}")
    before = community.name
    community.name, community.kind, community.updated_at = row.name, row.kind, now
    for table in (Case, Staff):
        await session.exec(
            sa.update(table).where(col(table.community_id) == community.id).values(community=row.name)
        )
    await session.flush()
    return f"{community.town} {before} → {row.name}"


async def set_active(session: AsyncSession, *, community: Community, active: bool, now: datetime) -> None:
    """Deactivate (or reactivate) a community: it leaves the forms' choices and scanning its QR code no longer
    sets it on new cases; existing cases, staff and resources keep their reference."""
    community.active, community.updated_at = active, now
    await session.flush()


@dataclass(slots=True)
class ImportReport:
    added: list[str] = field(default_factory=list)
    present: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    fatal: str | None = None

    @property
    def ok(self) -> bool:
        return self.fatal is None and not self.rejected

    def text(self) -> str:
        if self.fatal:
            return f"未导入：{self.fatal}"
        lines = [
            f"新增 {len(self.added)} 个村（社区），已存在 {self.present} 个，拒绝 {len(self.rejected)} 行"
        ]
        lines += [f"第{line}行：{reason}" for line, reason in self.rejected]
        return "\n".join(lines)


async def import_csv(session: AsyncSession, *, data: bytes, now: datetime) -> ImportReport:
    """Add the valid rows of a community CSV; refused rows are listed with line and reason; rows already in the
    registry are counted and left as they are. The caller commits (or not: a dry run)."""
    parsed = parse_csv(data)
    report = ImportReport(rejected=list(parsed.rejected), fatal=parsed.fatal)
    if parsed.fatal:
        return report
    existing = {(c.town, c.name) for c in await session.exec(select(Community))}
    for row in parsed.rows:
        if (row.town, row.name) in existing:
            report.present += 1
            continue
        session.add(Community(town=row.town, name=row.name, kind=row.kind, created_at=now, updated_at=now))
        existing.add((row.town, row.name))
        report.added.append(f"{row.town}{row.name}")
    await session.flush()
    return report


@dataclass(frozen=True, slots=True)
class Unmapped:
    table: str  # case | staff
    town: str
    value: str
    rows: int


async def map_free_text(session: AsyncSession, *, write: bool = True) -> list[Unmapped]:
    """Give every case and staff row whose free-text community matches a registry row of its town that row's
    id (the rule of migration 0014, run again after an import); returns what still matches nothing."""
    registry: dict[str, list[tuple[int, str]]] = {}
    for c in await session.exec(select(Community)):
        registry.setdefault(c.town, []).append((c.id or 0, c.name))
    unmapped: list[Unmapped] = []
    for table, name in ((Case, "case"), (Staff, "staff")):
        groups = await session.exec(
            select(table.town, table.community, sa.func.count())
            .where(
                col(table.community).is_not(None),
                col(table.community) != "",
                col(table.community_id).is_(None),
            )
            .group_by(col(table.town), col(table.community))
            .order_by(col(table.town), col(table.community))
        )
        for town, value, rows in groups.all():
            cid = match(town or "", value or "", registry)
            if cid is None:
                unmapped.append(Unmapped(name, town or "", value or "", int(rows)))
            elif write:
                await session.exec(
                    sa.update(table)
                    .where(
                        col(table.town) == town,
                        col(table.community) == value,
                        col(table.community_id).is_(None),
                    )
                    .values(community_id=cid)
                )
    for u in unmapped:
        log.warning("community not in the registry: %s %s %r (%d rows)", u.table, u.town, u.value, u.rows)
    return unmapped


# ------------------------------------------------------------------ QR codes
class QrCreator(Protocol):
    async def create_qrcode(self, scene: str) -> dict[str, Any]: ...


def scene_of(community: Community) -> str:
    return f"{SCENE_PREFIX}{community.id}"


def community_id_of_scene(scene: str | None) -> int | None:
    """``c:17`` → 17; anything else (another kind of scene, a malformed one) → None."""
    scene = (scene or "").strip()
    if not scene.startswith(SCENE_PREFIX):
        return None
    digits = scene[len(SCENE_PREFIX) :]
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 9 else None


async def ensure_qr(session: AsyncSession, *, community: Community, wechat: QrCreator, now: datetime) -> str:
    """The content of the community's permanent QR code, asking WeChat (``qrcode/create``, QR_LIMIT_STR_SCENE)
    only the first time; the ticket and URL are kept on the row."""
    if community.qr_url:
        return community.qr_url
    answer = await wechat.create_qrcode(scene_of(community))
    url, ticket = str(answer.get("url") or ""), str(answer.get("ticket") or "")
    if not url:
        raise CommunityError("微信没有返回二维码内容，请稍后再试")
    community.qr_url, community.qr_ticket, community.updated_at = url[:256], ticket[:128] or None, now
    await session.flush()
    return url


async def record_scan(
    session: AsyncSession, *, resident: Resident, scene: str | None, now: datetime
) -> Community | None:
    """A resident scanned a QR code: when its scene names an active community, remember it for the resident's
    next case and return it (the greeting names it); any other scene changes nothing."""
    cid = community_id_of_scene(scene)
    community = await session.get(Community, cid) if cid is not None else None
    if community is None or not community.active:
        if scene:
            log.info("scan with a scene that names no active community: %r", scene[:64])
        return None
    resident.scan_community_id, resident.scanned_at = community.id, now
    return community


async def take_scan(
    session: AsyncSession, *, resident_id: int | None, town: str, now: datetime
) -> tuple[bool, Community | None]:
    """Whether a new case of this resident comes by QR code (a scan within ``SCAN_VALID``), and the community
    it belongs to (the scanned one, when it is active and of the case's town). The scan is used up either way,
    so it never colours a later case."""
    if resident_id is None:
        return False, None
    resident = await session.get(Resident, resident_id)
    if resident is None or resident.scan_community_id is None:
        return False, None
    scanned_at, cid = resident.scanned_at, resident.scan_community_id
    resident.scan_community_id, resident.scanned_at = None, None
    if scanned_at is None or now - scanned_at > SCAN_VALID:
        return False, None
    community = await session.get(Community, cid)
    if community is None or not community.active or community.town != town:
        return True, None
    return True, community


# ------------------------------------------------------------------ for the staff pages' forms
#: the staff pages whose forms pick a community from a town's list (bot/web/views/staff.render adds the lists)
COMMUNITY_PICKERS = frozenset(
    {"staff/new.html", "staff/case.html", "staff/queue.html", "admin/staff.html", "pool/resource.html"}
)


async def communities_by_town(sessions: Any, *, towns: list[str] | None = None) -> dict[str, list[Community]]:
    """The active communities of ``towns`` (every town when None), for those forms: one query, then served from
    the reference cache (``bot.refcache``: dropped when this process commits a change to the registry,
    at most ``TTL`` seconds old otherwise)."""
    key = ("communities", None if towns is None else tuple(sorted(towns)))
    async with sessions() as db:
        return await cached(db, key, lambda: by_town(db, towns=towns))
