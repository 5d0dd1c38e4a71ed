"""Reports at scale: each mirror record's creation time in an indexed column (backfilled from
its fields), an index on activities by kind and time, and the change-to-visible latency of
each completed write.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)
BACKFILL_CHUNK = 5_000


def upgrade() -> None:
    with op.batch_alter_table("mirror") as batch:
        batch.add_column(sa.Column("created_at", WHEN))
    op.create_index("ix_activities_kind", "activities", ["kind", "occurred_at"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("changed_at", WHEN))
    op.create_table(
        "change_latency",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("changed_at", WHEN, nullable=False),
        sa.Column("done_at", WHEN, nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_latency")),
    )
    op.create_index("ix_change_latency_day", "change_latency", ["day", "system", "seconds"])
    _backfill_created()   # before the indexes on it: one build rather than an update a row
    op.create_index("ix_mirror_created", "mirror",
                    ["created_at", "deleted", "system", "object", "remote_id"])
    op.create_index("ix_mirror_alive_created", "mirror",
                    ["system", "object", "remote_id", "deleted", "created_at"])


# The built-in systems' creation fields when this revision was written (a migration is a
# snapshot: it never imports the connectors). A system registered later has no rows yet; its
# first pull stores each record's creation time itself.
CREATED_FIELDS = {"salesforce": "CreatedDate", "hubspot": "createdate"}


def _backfill_created() -> None:
    """Each record's creation time, read from its fields (what the pull stores from now on).
    Only the one field is read (in SQL), a chunk at a time."""
    bind = op.get_bind()
    mirror = sa.table("mirror", sa.column("system", sa.String), sa.column("object", sa.String),
                      sa.column("remote_id", sa.String), sa.column("fields", JSON),
                      sa.column("created_at", WHEN))
    utc = _utc_param(bind.dialect.name)
    stmt = (sa.update(mirror)
            .where(mirror.c.system == sa.bindparam("s"), mirror.c.object == sa.bindparam("o"),
                   mirror.c.remote_id == sa.bindparam("r"))
            .values(created_at=sa.bindparam("when")))
    for system, name in CREATED_FIELDS.items():
        raw = mirror.c.fields[name].as_string()
        rows = bind.execute(sa.select(mirror.c.object, mirror.c.remote_id, raw)
                            .where(mirror.c.system == system, raw.is_not(None))).all()
        updates = [{"s": system, "o": obj, "r": rid, "when": utc(when)}
                   for obj, rid, value in rows if (when := _moment(value)) is not None]
        for start in range(0, len(updates), BACKFILL_CHUNK):
            bind.execute(stmt, updates[start:start + BACKFILL_CHUNK])


def _moment(value: Any) -> datetime | None:
    """ISO text or epoch milliseconds -> aware UTC (connectors.profile.parse_moment's rule
    when this revision was written); None for anything else."""
    text = str(value).strip() if value is not None else ""
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _utc_param(dialect: str) -> Any:
    """SQLite keeps UTC times without a zone (as the models' UTCDateTime writes them)."""
    if dialect == "sqlite":
        return lambda when: when.replace(tzinfo=None)
    return lambda when: when


def downgrade() -> None:
    op.drop_index("ix_change_latency_day", table_name="change_latency")
    op.drop_table("change_latency")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("changed_at")
    op.drop_index("ix_activities_kind", table_name="activities")
    op.drop_index("ix_mirror_alive_created", table_name="mirror")
    op.drop_index("ix_mirror_created", table_name="mirror")
    with op.batch_alter_table("mirror") as batch:
        batch.drop_column("created_at")
