"""A per-process cache of the small reference tables read on every request (a town's communities for the pickers,
the category list, the policy catalogue, the deadline policies a new case's clock starts from): read once, then
served from memory.

How it stays right:

- an ORM write to one of these tables in this process drops the cache of that database when its transaction
  commits (SQLAlchemy session events below), whichever of the process's engines on that database wrote it (the
  webhook has an engine of its own on SQLite); a load that began before the drop does not store what it read;
- a write the events cannot see (another worker process, a command-line import, plain SQL) shows after at most
  ``TTL`` seconds, when the entry expires.

Only pages read through here; the checks of a submitted form (``category_names``, ``get_in_town``) still read
the database."""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Category, Community, SlaPolicy, WelfarePolicy

T = TypeVar("T")
#: how long another process's edit of a reference table may stay unseen here, in seconds
TTL = 30.0
_TABLES = (Category, Community, SlaPolicy, WelfarePolicy)
_DIRTY = "refcache_dirty"


@dataclass(slots=True)
class _Store:
    generation: int = 0
    entries: dict[Hashable, tuple[float, Any]] = field(default_factory=dict)


_STORES: weakref.WeakKeyDictionary[Engine, _Store] = weakref.WeakKeyDictionary()


def _store(engine: Engine) -> _Store:
    store = _STORES.get(engine)
    if store is None:
        store = _STORES[engine] = _Store()
    return store


def _database(engine: Engine) -> tuple[Any, ...]:
    url = engine.url
    return (url.get_backend_name(), url.host, url.port, url.database)


async def cached(session: AsyncSession, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
    """``load()``'s value for ``key`` in ``session``'s database, from memory when read less than ``TTL`` ago
    and not written since."""
    # the engine the session is bound to (a unit of work on a held connection has no sync session to ask)
    store = _store(getattr(session.bind, "sync_engine", None) or session.sync_session.get_bind())  # type: ignore[arg-type]
    now = time.monotonic()
    hit = store.entries.get(key)
    if hit is not None and now - hit[0] < TTL:
        value: T = hit[1]
        return value
    generation = store.generation
    value = await load()
    if store.generation == generation:  # nothing was committed to these tables meanwhile
        store.entries[key] = (now, value)
    return value


def forget(engine: Engine) -> None:
    """Drop every entry of ``engine``'s database, in every engine of this process on it (and keep loads under way
    from storing)."""
    database = _database(engine)
    for other, store in list(_STORES.items()):
        if other is engine or _database(other) == database:
            store.generation += 1
            store.entries.clear()


@event.listens_for(Session, "before_flush")
def _note_write(session: Session, _context: Any, _instances: Any) -> None:
    if not session.info.get(_DIRTY) and any(
        isinstance(o, _TABLES) for o in chain(session.new, session.dirty, session.deleted)
    ):
        session.info[_DIRTY] = True


@event.listens_for(Session, "after_commit")
def _drop_on_commit(session: Session) -> None:
    if session.info.pop(_DIRTY, False):
        bind = session.get_bind()
        if isinstance(bind, Engine):
            forget(bind)


@event.listens_for(Session, "after_rollback")
def _clear_note(session: Session) -> None:
    session.info.pop(_DIRTY, None)
