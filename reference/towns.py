"""The 33 towns and subdistricts (镇街/园区) of Dongguan with approximate centroids (DOMAIN.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Town:
    name: str
    short: str
    lat: float
    lon: float


TOWNS: tuple[Town, ...] = (
    Town("莞城街道", "莞城", 23.043, 113.752),
    Town("南城街道", "南城", 23.018, 113.745),
    Town("东城街道", "东城", 23.030, 113.785),
    Town("万江街道", "万江", 23.050, 113.725),
    Town("石碣镇", "石碣", 23.100, 113.800),
    Town("石龙镇", "石龙", 23.110, 113.870),
    Town("茶山镇", "茶山", 23.070, 113.880),
    Town("石排镇", "石排", 23.090, 113.930),
    Town("企石镇", "企石", 23.070, 114.010),
    Town("横沥镇", "横沥", 23.020, 113.960),
    Town("桥头镇", "桥头", 23.020, 114.090),
    Town("谢岗镇", "谢岗", 22.960, 114.150),
    Town("东坑镇", "东坑", 22.990, 113.940),
    Town("常平镇", "常平", 22.980, 114.010),
    Town("寮步镇", "寮步", 22.990, 113.860),
    Town("樟木头镇", "樟木头", 22.910, 114.080),
    Town("大朗镇", "大朗", 22.940, 113.930),
    Town("黄江镇", "黄江", 22.880, 113.990),
    Town("清溪镇", "清溪", 22.840, 114.160),
    Town("塘厦镇", "塘厦", 22.800, 114.070),
    Town("凤岗镇", "凤岗", 22.740, 114.140),
    Town("大岭山镇", "大岭山", 22.890, 113.840),
    Town("长安镇", "长安", 22.810, 113.800),
    Town("虎门镇", "虎门", 22.820, 113.670),
    Town("厚街镇", "厚街", 22.940, 113.670),
    Town("沙田镇", "沙田", 22.920, 113.600),
    Town("道滘镇", "道滘", 23.000, 113.670),
    Town("洪梅镇", "洪梅", 23.010, 113.610),
    Town("麻涌镇", "麻涌", 23.050, 113.580),
    Town("望牛墩镇", "望牛墩", 23.060, 113.650),
    Town("中堂镇", "中堂", 23.090, 113.660),
    Town("高埗镇", "高埗", 23.080, 113.730),
    Town("松山湖", "松山湖", 22.920, 113.890),
)

TOWN_NAMES: tuple[str, ...] = tuple(t.name for t in TOWNS)
BY_NAME: dict[str, Town] = {t.name: t for t in TOWNS}
BY_SHORT: dict[str, Town] = {t.short: t for t in TOWNS}


def get(name: str) -> Town | None:
    """A town by its full or short name."""
    return BY_NAME.get(name) or BY_SHORT.get(name)


def distance_km(a: Town, b: Town) -> float:
    """Great-circle distance between two towns' centroids."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def nearest(lat: float, lon: float) -> Town:
    """The town whose centroid is nearest to a point (for location messages)."""
    here = Town("", "", lat, lon)
    return min(TOWNS, key=lambda t: distance_km(here, t))
