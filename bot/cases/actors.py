"""Who acts on a case: the `Actor` (staff with role, town and community; resident; volunteer; system; an API
caller) and the staff role groups the transition table and the access rules are written with."""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import Staff
from bot.states import ROLE_LABEL as ROLE_LABEL  # re-exported: the roles' labels live with the enum
from bot.states import ActorType, Role

ROLES = tuple(Role)
CITY_ROLES = frozenset({Role.CITY_SUPERVISOR, Role.ADMIN})
SUPERVISORS = frozenset({Role.TOWN_SUPERVISOR, Role.CITY_SUPERVISOR, Role.ADMIN})
TOWN_WORKERS = frozenset({Role.TOWN_STAFF, Role.TOWN_SUPERVISOR})
ALL_STAFF: frozenset[str] = frozenset(ROLES)


@dataclass(frozen=True, slots=True)
class Actor:
    type: str  # staff | resident | system | volunteer | api
    id: int | None = None
    name: str | None = None
    role: str | None = None  # staff role
    town: str | None = None
    community: str | None = None
    community_id: int | None = None

    @classmethod
    def of_staff(cls, staff: Staff) -> Actor:
        return cls(
            ActorType.STAFF,
            staff.id,
            staff.display_name or staff.username,
            staff.role,
            staff.town,
            staff.community,
            staff.community_id,
        )

    @classmethod
    def system(cls, name: str = "系统") -> Actor:
        return cls(ActorType.SYSTEM, None, name)

    @property
    def role_key(self) -> str:
        return (self.role or "") if self.type == ActorType.STAFF else self.type

    @property
    def city_wide(self) -> bool:
        return self.type == ActorType.SYSTEM or (self.type == ActorType.STAFF and self.role in CITY_ROLES)
