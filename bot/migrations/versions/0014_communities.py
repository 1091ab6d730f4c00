"""The registry of communities (村/社区): the table with its seed list (reference/data/communities.csv), a
community id on cases, staff and resources, the community of a resident's last QR-code scan; today's free-text
community values mapped to registry rows, what could not be mapped logged (``python -m bot communities unmapped``
lists it at any time)

Revision ID: 0014
Revises: 0013
"""

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models
from reference.communities import match, seed_rows

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.communities")
_S = sqlmodel.sql.sqltypes.AutoString
MAPPED_TABLES = ("case", "staff")  # the tables with a free-text community column


def _add_fk(table: str, column: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column(column, sa.Integer(), nullable=True))
        batch.create_foreign_key(f"fk_{table}_{column}", "community", [column], ["id"], ondelete="SET NULL")
        if column == "community_id":
            batch.create_index(f"ix_{table}_community_id", [column], unique=False)


def upgrade() -> None:
    community = op.create_table(
        "community",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("town", _S(length=16), nullable=False),
        sa.Column("name", _S(length=32), nullable=False),
        sa.Column("kind", _S(length=4), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("qr_ticket", _S(length=128), nullable=True),
        sa.Column("qr_url", _S(length=256), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("town", "name"),
    )
    op.create_index(op.f("ix_community_town"), "community", ["town"], unique=False)
    now = datetime.now(UTC)
    op.bulk_insert(
        community,
        [
            {
                "town": r.town,
                "name": r.name,
                "kind": r.kind,
                "active": True,
                "created_at": now,
                "updated_at": now,
            }
            for r in seed_rows()
        ],
    )
    for table in ("case", "staff", "resource"):
        _add_fk(table, "community_id")
    _add_fk("resident", "scan_community_id")
    with op.batch_alter_table("resident") as batch:
        batch.add_column(sa.Column("scanned_at", bot.models.UTCDateTime(timezone=True), nullable=True))
    map_free_text(op.get_bind())


def map_free_text(conn: sa.Connection) -> list[tuple[str, str, str, int]]:
    """Set community_id from the free-text community of every case and staff row it can be matched to (the same
    rule as ``bot.cases.communities.map_free_text``); returns and logs (table, town, value, rows) not mapped."""
    registry: dict[str, list[tuple[int, str]]] = {}
    for cid, town, name in conn.execute(sa.text("SELECT id, town, name FROM community")):
        registry.setdefault(town, []).append((cid, name))
    unmapped: list[tuple[str, str, str, int]] = []
    for table in MAPPED_TABLES:
        values = conn.execute(
            sa.text(
                f'SELECT town, community, COUNT(*) FROM "{table}" WHERE community IS NOT NULL '
                "AND community <> '' AND community_id IS NULL GROUP BY town, community"
            )
        ).all()
        for town, value, rows in values:
            cid = match(town or "", value, registry)
            if cid is None:
                unmapped.append((table, town or "", value, int(rows)))
                continue
            conn.execute(
                sa.text(
                    f'UPDATE "{table}" SET community_id = :cid WHERE town = :town AND community = :value '
                    "AND community_id IS NULL"
                ),
                {"cid": cid, "town": town, "value": value},
            )
    for table, town, value, rows in unmapped:
        log.warning("community not in the registry: %s %s %r (%d rows)", table, town, value, rows)
    if unmapped:
        log.warning(
            "%d free-text community values were not mapped; `python -m bot communities unmapped` lists them",
            len(unmapped),
        )
    return unmapped


def downgrade() -> None:
    with op.batch_alter_table("resident") as batch:
        batch.drop_column("scanned_at")
        batch.drop_constraint("fk_resident_scan_community_id", type_="foreignkey")
        batch.drop_column("scan_community_id")
    for table in ("resource", "staff", "case"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_community_id")
            batch.drop_constraint(f"fk_{table}_community_id", type_="foreignkey")
            batch.drop_column("community_id")
    op.drop_index(op.f("ix_community_town"), table_name="community")
    op.drop_table("community")
