"""The 爱心资源库 (resource pool) in the database. Owns the Resource and Offer rows: every write to them goes
through this package, always in the caller's transaction.

The pure engine lives in ``matching/``; this package turns rows into engine objects and engine actions back into
rows, timeline events (``bot.cases.timeline``) and outbox messages. Modules, lower first (each imports only
those above it in this list):

- ``config``: the pool's error, the matching configuration from Settings, offer statuses and labels, wording;
- ``snapshot``: the pool as the engine sees it (cached per process), ranking the helpers for one wish;
- ``records``: row steps shared below (lock a case, its offers, conditional status change, counters);
- ``offers``: the offer cascade (offer, accept, decline, answers staff record for donors without WeChat,
  withdrawal);
- ``sweeps``: what the scheduler's sweeps do (offer timeouts, the automatic offer rule);
- ``volunteers``: WeChat binding, progress reports, the chat hook, the volunteer's signed tasks link;
- ``admin``: jurisdiction, the staff list, a resource's history, editing and (de)activating;
- ``transfer``: CSV/XLSX import (bounded, all or nothing) and export (masked for most roles);
- ``panel``: the pool panel of the staff case page;
- ``batch``: batch assignment proposals and sending them.

The names below are the package's public surface; callers may import them from here or from their module.
"""

from bot.pool.admin import (
    EDITABLE,
    PoolFilter,
    PoolPage,
    ResourceHistory,
    allowed_categories,
    can_edit,
    can_see,
    get_resource_for,
    list_pool,
    resource_history,
    serves,
    set_active,
    update_resource,
)
from bot.pool.batch import BatchProposal, ProposalRow, open_wishes, propose_batch, send_batch
from bot.pool.config import (
    DEFAULT_CONFIG,
    EXHAUSTED_FLAG,
    MATCHED,
    OFFER_LABEL,
    OPEN_MATCH,
    OPEN_WISH_STATES,
    Mode,
    PoolConfig,
    PoolError,
)
from bot.pool.offers import (
    Answer,
    OfferOutcome,
    accept,
    cancel_offers,
    decline,
    offer,
    record_answer,
    withdraw_offer,
)
from bot.pool.panel import candidates_panel
from bot.pool.snapshot import (
    POOL_CACHE,
    PoolCache,
    Snapshot,
    build_snapshot,
    load_pool,
    rank_for_case,
    to_engine,
    wish_for,
)
from bot.pool.sweeps import (
    auto_offer_due,
    handle_offer_timeout,
    make_offer_timeout_hook,
    maybe_auto_offer,
    on_offer_timeout,
)
from bot.pool.transfer import (
    FULL_PHONE_EXPORT_ROLES,
    Export,
    ImportOutcome,
    export_pool,
    exports_full_phones,
    import_pool,
)
from bot.pool.volunteers import (
    BIND_PREFIX,
    bind_code_of,
    bind_volunteer,
    new_volunteer_bind_code,
    report_progress,
    tasks_link,
    volunteer_by_openid,
    volunteer_chat,
)

__all__ = [
    "BIND_PREFIX",
    "DEFAULT_CONFIG",
    "EDITABLE",
    "EXHAUSTED_FLAG",
    "FULL_PHONE_EXPORT_ROLES",
    "MATCHED",
    "OFFER_LABEL",
    "OPEN_MATCH",
    "OPEN_WISH_STATES",
    "POOL_CACHE",
    "Answer",
    "BatchProposal",
    "Export",
    "ImportOutcome",
    "Mode",
    "OfferOutcome",
    "PoolCache",
    "PoolConfig",
    "PoolError",
    "PoolFilter",
    "PoolPage",
    "ProposalRow",
    "ResourceHistory",
    "Snapshot",
    "accept",
    "allowed_categories",
    "auto_offer_due",
    "bind_code_of",
    "bind_volunteer",
    "build_snapshot",
    "can_edit",
    "can_see",
    "cancel_offers",
    "candidates_panel",
    "decline",
    "export_pool",
    "exports_full_phones",
    "get_resource_for",
    "handle_offer_timeout",
    "import_pool",
    "list_pool",
    "load_pool",
    "make_offer_timeout_hook",
    "maybe_auto_offer",
    "new_volunteer_bind_code",
    "offer",
    "on_offer_timeout",
    "open_wishes",
    "propose_batch",
    "rank_for_case",
    "record_answer",
    "report_progress",
    "resource_history",
    "send_batch",
    "serves",
    "set_active",
    "tasks_link",
    "to_engine",
    "update_resource",
    "volunteer_by_openid",
    "volunteer_chat",
    "withdraw_offer",
    "wish_for",
]
