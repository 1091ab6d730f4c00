"""the tamper-evident timeline: a hash per case event chained to the previous event of its case (existing rows
are chained here, in id order per case)

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("caseevent") as batch:
        batch.add_column(sa.Column("chain_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.add_column(
            sa.Column("erased_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    _backfill()


def _backfill() -> None:
    # the hashing rule itself is the project's (bot/cases/chain.py): a chain written here must verify there
    from bot.cases.chain import GENESIS, link_hash

    events = sa.table(
        "caseevent",
        sa.column("id", sa.Integer()),
        sa.column("case_id", sa.Integer()),
        sa.column("at", bot.models.UTCDateTime(timezone=True)),
        sa.column("actor_type", sa.String()),
        sa.column("actor_id", sa.Integer()),
        sa.column("actor_name", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("from_status", sa.String()),
        sa.column("to_status", sa.String()),
        sa.column("note", sa.String()),
        sa.column("data", sa.JSON()),
        sa.column("chain_hash", sa.String()),
        sa.column("erased_digest", sa.String()),
    )
    bind = op.get_bind()
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(events).where(events.c.id > last_id).order_by(events.c.id).limit(2000)
        ).fetchall()
        if not rows:
            break
        last_id = rows[-1].id
        heads: dict[int, str] = {}
        for row in rows:
            heads.setdefault(row.case_id, "")
        # the heads of chains begun in an earlier batch
        known = bind.execute(
            sa.select(events.c.case_id, events.c.chain_hash, events.c.id)
            .where(events.c.case_id.in_(list(heads)), events.c.chain_hash.is_not(None))
            .order_by(events.c.id)
        ).fetchall()
        for k in known:
            heads[k.case_id] = k.chain_hash
        for row in rows:
            h = link_hash(heads[row.case_id] or GENESIS, row)
            heads[row.case_id] = h
            bind.execute(sa.update(events).where(events.c.id == row.id).values(chain_hash=h))


def downgrade() -> None:
    with op.batch_alter_table("caseevent") as batch:
        batch.drop_column("erased_digest")
        batch.drop_column("chain_hash")
