"""The deadline sweeps' marks (reminded_at, escalated_at, escalated_city_at, resident_nudged_at) are not indexed,
so PostgreSQL can write the new row version on the same page without touching the case table's twelve indexes
(a heap-only update) — if the page has room. A table filled by inserts leaves none; with fillfactor 90 a page
keeps a tenth free for updates. Measured on the 100,000-case sweep (benchmarks/README.md, 2026-12-06): marking
976 cases went from 976 index-maintaining updates to heap-only ones. Applies to pages written from now on
(existing pages keep their fill until rewritten, e.g. by VACUUM FULL). SQLite has no such setting: nothing there.

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE "case" SET (fillfactor = 90)')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE "case" RESET (fillfactor)')
