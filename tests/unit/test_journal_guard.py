"""The guard file (``spool.Guard``): a kept delivery is on disk when ``keep`` returns, the file empties when nothing
is outstanding, and past its size limit it is rewritten with the outstanding entries only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.conversation.spool import Guard, decode
from webhooks import Delivery

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def delivery(n: int) -> Delivery:
    return Delivery(
        key=f"msg:{n}",
        openid=f"oGuard{n}",
        account="gh_guard",
        msg_type="text",
        event=None,
        text="你好" * 20,
        media={},
        create_time=NOW,
        raw_xml="<xml/>",
    )


def keys_on_disk(guard: Guard) -> list[str]:
    return [decode(line).delivery.key for line in guard.path.read_bytes().splitlines(keepends=True)]


async def test_kept_deliveries_are_on_disk_and_the_file_empties_when_none_is_outstanding(
    tmp_path: Path,
) -> None:
    guard = Guard(tmp_path, "t1")
    await guard.keep(delivery(1), NOW)
    await guard.keep(delivery(2), NOW)
    assert keys_on_disk(guard) == ["msg:1", "msg:2"] and "msg:1" in guard and len(guard) == 2
    guard.release("msg:1")
    assert keys_on_disk(guard) == ["msg:1", "msg:2"]  # one still outstanding: nothing rewritten
    guard.release("msg:2")
    assert guard.path.read_bytes() == b""
    guard.close()


async def test_past_its_size_limit_the_file_keeps_only_the_outstanding_entries(tmp_path: Path) -> None:
    guard = Guard(tmp_path, "t2")
    guard.COMPACT_BYTES = 1  # every write after the first compacts
    for n in (1, 2, 3):
        await guard.keep(delivery(n), NOW)
    guard.release("msg:1")
    guard.release("msg:2")
    await guard.keep(delivery(4), NOW)
    assert keys_on_disk(guard) == ["msg:3", "msg:4"]
    assert not list(tmp_path.glob("*.compact"))
    guard.close()
