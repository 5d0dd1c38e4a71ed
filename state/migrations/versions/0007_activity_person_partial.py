"""Activities by stored person only: ``ix_activities_person`` becomes a partial index over
the rows that have a ``person_id``.

The pipeline stores every activity with the record it points at and leaves ``person_id``
empty (the person comes from that record's link), so the full index held one entry per
activity under NULL and every pulled activity paid an insert into it, for reads that only
ever look up rows with a stored person id (imports, older rows; state/reports.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = ["person_id", "occurred_at"]


def upgrade() -> None:
    op.drop_index("ix_activities_person", table_name="activities")
    stored = sa.text("person_id IS NOT NULL")
    op.create_index("ix_activities_person", "activities", COLUMNS,
                    sqlite_where=stored, postgresql_where=stored)


def downgrade() -> None:
    op.drop_index("ix_activities_person", table_name="activities")
    op.create_index("ix_activities_person", "activities", COLUMNS)
