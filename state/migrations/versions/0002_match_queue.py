"""The match queue: pulled records wait there, durably, until matched to a person.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "match_queue",
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("system", "object", "remote_id", name=op.f("pk_match_queue")),
    )


def downgrade() -> None:
    op.drop_table("match_queue")
