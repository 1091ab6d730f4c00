"""Who acts on a case: the `Actor` (staff with role, town and community; resident; volunteer; system; an API
caller) and the staff role groups the transition table and the access rules are written with."""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import Staff

ROLE_LABEL: dict[str, str] = {
    "community_worker": "村（社区）干部",
    "town_staff": "镇街工作人员",
    "town_supervisor": "镇街负责人",
    "city_supervisor": "市级督办",
    "admin": "系统管理员",
}
ROLES = tuple(ROLE_LABEL)
CITY_ROLES = frozenset({"city_supervisor", "admin"})
SUPERVISORS = frozenset({"town_supervisor", "city_supervisor", "admin"})
TOWN_WORKERS = frozenset({"town_staff", "town_supervisor"})
ALL_STAFF = frozenset(ROLES)


@dataclass(frozen=True, slots=True)
class Actor:
    type: str  # staff | resident | system | volunteer | api
    id: int | None = None
    name: str | None = None
    role: str | None = None  # staff role
    town: str | None = None
    community: str | None = None

    @classmethod
    def of_staff(cls, staff: Staff) -> Actor:
        return cls(
            "staff", staff.id, staff.display_name or staff.username, staff.role, staff.town, staff.community
        )

    @classmethod
    def system(cls, name: str = "系统") -> Actor:
        return cls("system", None, name)

    @property
    def role_key(self) -> str:
        return (self.role or "") if self.type == "staff" else self.type

    @property
    def city_wide(self) -> bool:
        return self.type == "system" or (self.type == "staff" and self.role in CITY_ROLES)
