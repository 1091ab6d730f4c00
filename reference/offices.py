"""Where a resident reaches a person: each town's office line and the city's 12345 hotline.

No town's office number is written here: none is published in a form this project can vouch for. A deployment
fills them in through the ``TOWN_OFFICE_PHONES`` setting (a JSON object: town full name → number); until then
every town falls back to the 12345 government service hotline, which forwards to the town. Office hours are a
setting too (``OFFICE_HOURS``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reference.towns import TOWNS

HOTLINE = "12345"
HOTLINE_LABEL = "东莞12345政务服务便民热线"
DEFAULT_OFFICE_HOURS = "工作日 8:30–12:00、14:00–17:30"
#: the town's own line, when configured; the empty default means "use the hotline"
TOWN_OFFICE_PHONES: dict[str, str] = {town.name: "" for town in TOWNS}


@dataclass(frozen=True, slots=True)
class Office:
    town: str | None
    phone: str
    label: str  # what the resident reads: "厚街镇社会事务局" or the hotline's name
    hours: str
    is_hotline: bool


def office_for(
    town: str | None, *, overrides: Mapping[str, str] | None = None, hours: str | None = None
) -> Office:
    """The number a resident of `town` calls (the configured town line, else 12345), with the office hours."""
    phone = ((overrides or {}).get(town or "") or TOWN_OFFICE_PHONES.get(town or "") or "").strip()
    if phone:
        return Office(town, phone, f"{town}社会事务局", hours or DEFAULT_OFFICE_HOURS, False)
    return Office(town, HOTLINE, HOTLINE_LABEL, hours or DEFAULT_OFFICE_HOURS, True)
