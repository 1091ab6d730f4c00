"""Waking hours: a deadline a person must act on, or a reminder a person receives, never falls at night.

A donor's offer deadline computed as "24 hours after the invitation" lands at 02:15 when the invitation went out at
02:15; a survey reminder "24 hours before the deadline" of a case completed at night arrives at night. Both move to
the start of the next waking window (08:00–21:00 China time unless ``Settings.waking_hours`` says otherwise): a
deadline only ever moves later (the person gets more time, never less), a reminder waits until morning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–~]\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class WakingHours:
    start: time = time(8, 0)
    end: time = time(21, 0)

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError("waking hours must start before they end, within one day")

    @classmethod
    def parse(cls, text: str) -> WakingHours:
        """``"08:00-21:00"`` (China time)."""
        m = _SPAN.match(text or "")
        if m is None:
            raise ValueError(f"waking hours must look like 08:00-21:00, not {text!r}")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if not (0 <= h1 <= 23 and 0 <= h2 <= 23 and m1 < 60 and m2 < 60):
            raise ValueError(f"waking hours must look like 08:00-21:00, not {text!r}")
        return cls(time(h1, m1), time(h2, m2))

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(CHINA).time()
        return self.start <= local <= self.end

    def clamp(self, moment: datetime) -> datetime:
        """``moment`` when it lies in waking hours, else the next waking start (same zone as ``moment``)."""
        local = moment.astimezone(CHINA)
        if self.contains(local):
            return moment
        day = local.date() if local.time() < self.start else local.date() + timedelta(days=1)
        return datetime.combine(day, self.start, tzinfo=CHINA).astimezone(moment.tzinfo or CHINA)


DEFAULT_WAKING = WakingHours()


def waking_of(settings: object) -> WakingHours:
    """The configured window (``Settings.waking_hours``), the default when unset."""
    text = getattr(settings, "waking_hours", "") if settings is not None else ""
    return WakingHours.parse(text) if text else DEFAULT_WAKING
