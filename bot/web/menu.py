"""The staff menu: one table of the staff pages a menu links to, who may open each, and how they are grouped.

On a phone the three things a town worker uses every day (the case queue, the call queue, the cases they
claimed) stay in the top bar; everything else sits in one 更多 menu (a <details>, so it opens without
JavaScript), grouped as 办理 / 资源 / 政府 / 统计 / 管理 / 我的. A role sees only the pages it may open: the roles
here repeat the route guards (``require_staff`` and the town-level checks in the views), and the browser test
tests/browser/test_staff_nav.py opens every link for every role and checks each answers 200."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.cases.actors import ALL_STAFF, CITY_ROLES, SUPERVISORS, TOWN_WORKERS
from bot.states import Role

#: the town-level pages (warnings, 督办, funds): town staff and city roles, not a community's worker
TOWN_LEVEL: frozenset[str] = ALL_STAFF - {Role.COMMUNITY_WORKER}
#: the resource pool's guard (bot/web/views/pool.py POOL_ROLES)
POOL: frozenset[str] = TOWN_WORKERS | CITY_ROLES
ADMIN: frozenset[str] = frozenset({Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Item:
    route: str  # the route's name
    label: str
    roles: frozenset[str]
    query: str = ""  # appended to the route's URL (the queue filtered to the cases one claimed)


#: always in the top bar
DAILY: tuple[Item, ...] = (
    Item("staff_queue", "诉求", ALL_STAFF),
    Item("staff_calls", "电话回访", ALL_STAFF),
    Item("staff_queue", "我认领的", ALL_STAFF, query="mine=1"),
)

#: the 更多 menu, group by group
GROUPS: tuple[tuple[str, tuple[Item, ...]], ...] = (
    (
        "办理",
        (
            Item("staff_case_new", "代录诉求", ALL_STAFF),
            Item("staff_outbox", "消息发送", ALL_STAFF),
            Item("staff_warnings", "事件预警", TOWN_LEVEL),
        ),
    ),
    (
        "资源",
        (
            Item("staff_pool", "爱心资源库", POOL),
            Item("staff_batch", "批量派单", POOL),
            Item("staff_wall", "圆梦墙认领", ALL_STAFF),
            Item("staff_leads", "资源线索", ALL_STAFF),
            Item("communities", "村（社区）", ALL_STAFF),
        ),
    ),
    (
        "政府",
        (
            Item("staff_policies", "政策", ALL_STAFF),
            Item("staff_projects", "微实事", ALL_STAFF),
            Item("staff_duties", "权责清单", ALL_STAFF),
            Item("staff_town_supervision", "镇街督办", TOWN_LEVEL),
            Item("staff_funds", "资金", TOWN_LEVEL),
        ),
    ),
    (
        "统计",
        (
            Item("staff_stats", "统计", ALL_STAFF),
            Item("staff_charts", "图表", ALL_STAFF),
            Item("staff_league", "排名", SUPERVISORS),
            Item("staff_notices", "公告", SUPERVISORS),
        ),
    ),
    (
        "管理",
        (
            Item("staff_audit", "操作日志", SUPERVISORS),
            Item("staff_erasure", "删除申请", SUPERVISORS),
            Item("admin_staff", "账号管理", ADMIN),
            Item("admin_categories", "类别管理", ADMIN),
            Item("admin_deadlines", "办理时限", ALL_STAFF),
            Item("admin_api_keys", "开放接口", ADMIN),
        ),
    ),
    ("我的", (Item("staff_account", "我的账号", ALL_STAFF),)),
)


@dataclass(slots=True)
class Link:
    label: str
    href: str
    current: bool


@dataclass(slots=True)
class Menu:
    daily: list[Link]
    groups: list[tuple[str, list[Link]]]
    current_label: str | None = None  # the page in 更多 that is open, named on the summary


def may_see(role: str | None, item: Item) -> bool:
    return role is not None and role in item.roles


def _is_current(path: str, query: dict[str, str], item: Item, href_path: str) -> bool:
    if path != href_path:
        return False
    if item.query:
        key, _, value = item.query.partition("=")
        return query.get(key) == value
    return item.route != "staff_queue" or query.get("mine") != "1"


def staff_menu(request: Any, role: str | None) -> Menu:
    """The menu `role` sees on this request's page; pages not (yet) routed in this app are left out."""
    router = request.app.router
    path = request.path
    query = dict(request.query)

    def links(items: tuple[Item, ...]) -> list[Link]:
        out = []
        for item in items:
            if item.route not in router or not may_see(role, item):
                continue
            href_path = str(router[item.route].url_for())
            href = f"{href_path}?{item.query}" if item.query else href_path
            out.append(Link(item.label, href, _is_current(path, query, item, href_path)))
        return out

    menu = Menu(daily=links(DAILY), groups=[])
    for title, items in GROUPS:
        group = links(items)
        if group:
            menu.groups.append((title, group))
            for link in group:
                if link.current:
                    menu.current_label = link.label
    return menu
