"""Push claims by group: an index on the outbox by status and (system, object, operation).

A claim takes the due rows of one group; with only the (status, next_attempt_at) index it
stepped over every due row of the other groups first (a backfill's HubSpot backlog, for each
Salesforce claim), and counting the due rows per group read every due row from the table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_group", "outbox",
                    ["status", "system", "object", "operation", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_group", table_name="outbox")
