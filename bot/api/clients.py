"""API clients: keys shown once, stored as a SHA-256 hash, with scopes and an optional jurisdiction (a town).

A key reads ``dgj_<prefix>_<secret>``; the prefix finds the row, the hash of the whole key is compared in constant
time. Keys carry enough entropy (192 bits) that a fast hash is the right tool (no password stretching needed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import ApiClient
from reference.towns import TOWNS

SCOPES: dict[str, str] = {
    "cases:read": "读取诉求（状态、类别、镇街、时间线）",
    "cases:write": "创建诉求、添加备注和外部办理状态",
    "cases:pii": "读取居民的完整联系电话（否则打码）",
    "webhooks": "订阅诉求状态变化的回调",
}
TOWN_NAMES = frozenset(t.name for t in TOWNS)


class ClientError(ValueError):
    """A key cannot be created as asked (unknown scope or town, duplicate name)."""


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request."""

    id: int
    name: str
    scopes: frozenset[str]
    town: str | None

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_client(
    session: AsyncSession, *, name: str, scopes: list[str], town: str | None, now: datetime
) -> tuple[ApiClient, str]:
    """A new client and its key (the only time the key is seen)."""
    name = name.strip()
    if not name or len(name) > 64:
        raise ClientError("名称不能为空，且不超过 64 个字")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ClientError(f"未知的权限范围：{', '.join(unknown) or '（空）'}；可用：{', '.join(SCOPES)}")
    if town is not None and town not in TOWN_NAMES:
        raise ClientError(f"未知的镇街：{town}")
    if (await session.exec(select(ApiClient).where(ApiClient.name == name))).first():
        raise ClientError(f"已有同名的接口调用方：{name}")
    prefix = secrets.token_hex(6)
    key = f"dgj_{prefix}_{secrets.token_urlsafe(24)}"
    client = ApiClient(
        name=name,
        key_prefix=prefix,
        key_hash=_hash(key),
        scopes=sorted(set(scopes)),
        town=town,
        created_at=now,
    )
    session.add(client)
    await session.flush()
    return client, key


async def authenticate(session: AsyncSession, *, key: str, now: datetime) -> Caller | None:
    """The caller for a key, or None (unknown, malformed or revoked: the same answer for each)."""
    parts = key.split("_", 2)  # the secret part may itself contain "_"
    if len(parts) != 3 or parts[0] != "dgj" or len(parts[1]) != 12 or len(key) > 80:
        return None
    client = (await session.exec(select(ApiClient).where(ApiClient.key_prefix == parts[1]))).first()
    if client is None or not client.active:
        _hash(key)  # the same work whether or not the prefix exists
        return None
    if not hmac.compare_digest(client.key_hash, _hash(key)):
        return None
    client.last_used_at = now
    assert client.id is not None
    return Caller(id=client.id, name=client.name, scopes=frozenset(client.scopes), town=client.town)


async def revoke(session: AsyncSession, *, client_id: int, now: datetime) -> bool:
    client = await session.get(ApiClient, client_id)
    if client is None or not client.active:
        return False
    client.active = False
    client.revoked_at = now
    return True


async def list_clients(session: AsyncSession) -> list[ApiClient]:
    return list((await session.exec(select(ApiClient).order_by(col(ApiClient.id)))).all())
