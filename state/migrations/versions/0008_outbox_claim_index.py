"""The outbox loses ``ix_outbox_claim``, and ``ix_outbox_group`` ends with ``id``.

A pending claim takes a group's due rows by (next_attempt_at, id). Before, no index served
that order for one group: with a rescore's rows (20,000 persons; pending, done, in flight,
dead) Postgres read every due row of the group through ``ix_outbox_group`` and sorted them
for each claim of 200; with two groups of 10,000 due rows it walked ``ix_outbox_claim``
(status, next_attempt_at, id) instead, reading the other group's rows to filter them out.
With ``id`` last in the group index it reads the group's rows in claim order and stops at
the claim's limit (SQLite's indexes end with the row id already). ``ix_outbox_claim`` then
serves nothing: the due counts, dead letters and claim counts used the group index in both
cases on Postgres, and SQLite used it only to count rows by status, which the group index
covers too. Each planned write paid an entry in it, and each claim and completion (a status
change) moved that entry.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

GROUP = ["status", "system", "object", "operation", "next_attempt_at"]


def upgrade() -> None:
    op.drop_index("ix_outbox_claim", table_name="outbox")
    op.drop_index("ix_outbox_group", table_name="outbox")
    op.create_index("ix_outbox_group", "outbox", [*GROUP, "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_group", table_name="outbox")
    op.create_index("ix_outbox_group", "outbox", GROUP)
    op.create_index("ix_outbox_claim", "outbox", ["status", "next_attempt_at", "id"])
