"""The initial schema: cursors, mirror, persons, links, activities, decisions, outbox,
runs, leases, idempotency keys, data-quality items and small named state.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the model types, so later model changes never rewrite history.
TIMESTAMP = sa.DateTime(timezone=True)
JSONV = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("ref_object", sa.String(length=64), nullable=True),
        sa.Column("ref_id", sa.String(length=64), nullable=True),
        sa.Column("person_id", BIGID, nullable=True),
        sa.Column("details", JSONV, nullable=False),
        sa.PrimaryKeyConstraint("system", "source_id", name=op.f("pk_activities")),
    )
    op.create_index(
        "ix_activities_person", "activities", ["person_id", "occurred_at"], unique=False
    )
    op.create_index("ix_activities_ref", "activities", ["ref_object", "ref_id"], unique=False)
    op.create_table(
        "agent_state",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("value", JSONV, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_agent_state")),
    )
    op.create_table(
        "data_quality",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("detail", JSONV, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_quality")),
        sa.UniqueConstraint("key", name=op.f("uq_data_quality_key")),
    )
    op.create_table(
        "decisions",
        sa.Column("person_id", BIGID, nullable=False),
        sa.Column("grade", sa.String(length=4), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("segment", sa.String(length=40), nullable=True),
        sa.Column("stage", sa.String(length=40), nullable=True),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("track", sa.String(length=80), nullable=True),
        sa.Column("mql_date", TIMESTAMP, nullable=True),
        sa.Column("reasons", JSONV, nullable=False),
        sa.Column("evaluated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_decisions")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("remote_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("holder", sa.String(length=120), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "mirror",
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=64), nullable=False),
        sa.Column("fields", JSONV, nullable=False),
        sa.Column("modstamp", TIMESTAMP, nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("agent_written", JSONV, nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=True),
        sa.PrimaryKeyConstraint("system", "object", "remote_id", name=op.f("pk_mirror")),
    )
    op.create_index(op.f("ix_mirror_email_key"), "mirror", ["email_key"], unique=False)
    op.create_table(
        "outbox",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=24), nullable=False),
        sa.Column("remote_id", sa.String(length=64), nullable=True),
        sa.Column("person_id", BIGID, nullable=True),
        sa.Column("fields", JSONV, nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("claimed_by", sa.String(length=120), nullable=True),
        sa.Column("claimed_until", TIMESTAMP, nullable=True),
        sa.Column("error_code", sa.String(length=80), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_idempotency_key")),
    )
    op.create_index("ix_outbox_claim", "outbox", ["status", "next_attempt_at", "id"], unique=False)
    op.create_table(
        "person_links",
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", BIGID, nullable=False),
        sa.Column("linked_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("system", "object", "remote_id", name=op.f("pk_person_links")),
    )
    op.create_index(op.f("ix_person_links_person_id"), "person_links", ["person_id"], unique=False)
    op.create_table(
        "persons",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.Column("due_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persons")),
    )
    op.create_index(op.f("ix_persons_dirty"), "persons", ["dirty"], unique=False)
    op.create_index(op.f("ix_persons_due_at"), "persons", ["due_at"], unique=False)
    op.create_index(op.f("ix_persons_email_key"), "persons", ["email_key"], unique=False)
    op.create_table(
        "runs",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("holder", sa.String(length=120), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("counts", JSONV, nullable=False),
        sa.Column("api_calls", JSONV, nullable=False),
        sa.Column("errors", JSONV, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_started_at"), "runs", ["started_at"], unique=False)
    op.create_table(
        "sync_cursors",
        sa.Column("stream", sa.String(length=120), nullable=False),
        sa.Column("modstamp", TIMESTAMP, nullable=True),
        sa.Column("last_id", sa.String(length=64), nullable=True),
        sa.Column("boundary_ids", JSONV, nullable=False),
        sa.Column("extra", JSONV, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("stream", name=op.f("pk_sync_cursors")),
    )


def downgrade() -> None:
    op.drop_table("sync_cursors")
    op.drop_table("runs")
    op.drop_table("persons")
    op.drop_table("person_links")
    op.drop_table("outbox")
    op.drop_table("mirror")
    op.drop_table("leases")
    op.drop_table("idempotency_keys")
    op.drop_table("decisions")
    op.drop_table("data_quality")
    op.drop_table("agent_state")
    op.drop_table("activities")
