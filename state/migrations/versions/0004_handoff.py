"""The handoff loop: stage history (backfilled from the stored decisions), SLA timers, the
tasks the agent queued, and reps' feedback.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)
# Stages at or past MQL: a stored decision there was an MQL once (its mql_date says when).
PAST_MQL = ("MQL", "SAL", "SQL", "Opportunity", "Customer")
BACKFILL_CHUNK = 5_000


def upgrade() -> None:
    _create_stage_history()
    op.create_table(
        "sla_timers",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("person_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("due_at", WHEN, nullable=False),
        sa.Column("recipient", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fired_at", WHEN),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sla_timers")),
    )
    op.create_index("ix_sla_timers_person_id", "sla_timers", ["person_id"])
    op.create_index("ix_sla_timers_due", "sla_timers", ["status", "due_at"])
    op.create_table(
        "handoff_tasks",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("person_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("system", sa.String(16)),
        sa.Column("recipient", sa.String(64)),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_handoff_tasks")),
    )
    op.create_index("ix_handoff_tasks_person_id", "handoff_tasks", ["person_id"])
    op.create_index("ix_handoff_tasks_created_at", "handoff_tasks", ["created_at"])
    _create_feedback()
    _backfill_stage_history()


def _create_stage_history() -> None:
    op.create_table(
        "stage_history",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("person_id", BIG_ID, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("from_stage", sa.String(40)),
        sa.Column("to_stage", sa.String(40), nullable=False),
        sa.Column("cause", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(120)),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_history")),
        sa.UniqueConstraint("key", name=op.f("uq_stage_history_key")),
    )
    op.create_index("ix_stage_history_at", "stage_history", ["at"])
    op.create_index("ix_stage_history_person", "stage_history", ["person_id", "at"])


def _create_feedback() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("person_id", BIG_ID, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(120)),
        sa.Column("lead_status", sa.String(80)),
        sa.Column("lead_source", sa.String(120)),
        sa.Column("campaign", sa.String(200)),
        sa.Column("owner", sa.String(64)),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("key", name=op.f("uq_feedback_key")),
    )
    op.create_index("ix_feedback_person_id", "feedback", ["person_id"])
    op.create_index("ix_feedback_at", "feedback", ["at"])


def _backfill_stage_history() -> None:
    """A decision holds a person's latest stage and, once an MQL, the MQL date: that gives
    the step into MQL (at the MQL date) and the step to the latest stage (at the evaluation)."""
    bind = op.get_bind()
    decisions = sa.table("decisions", sa.column("person_id"), sa.column("stage"),
                         sa.column("mql_date", WHEN), sa.column("evaluated_at", WHEN))
    history = sa.table("stage_history", sa.column("key"), sa.column("person_id"),
                       sa.column("at", WHEN), sa.column("from_stage"), sa.column("to_stage"),
                       sa.column("cause"), sa.column("actor"), sa.column("detail", JSON))
    query = sa.select(decisions).where(decisions.c.stage.is_not(None)) \
        .order_by(decisions.c.person_id)
    rows: list[dict[str, Any]] = []
    for decision in bind.execute(query):
        rows.extend(_backfill_rows(decision))
        if len(rows) >= BACKFILL_CHUNK:
            bind.execute(history.insert(), rows)
            rows = []
    if rows:
        bind.execute(history.insert(), rows)


def _backfill_rows(decision: Any) -> list[dict[str, Any]]:
    pid, stage, mql_date, evaluated_at = (decision.person_id, decision.stage,
                                          decision.mql_date, decision.evaluated_at)
    base = {"person_id": pid, "cause": "backfill", "actor": None,
            "detail": {"note": "from the decision stored before stage history existed"}}
    if mql_date is None or stage not in PAST_MQL:
        return [{**base, "key": f"{pid}:backfill:{stage}", "at": evaluated_at,
                 "from_stage": None, "to_stage": stage}]
    rows = [{**base, "key": f"{pid}:backfill:MQL", "at": mql_date, "from_stage": None,
             "to_stage": "MQL"}]
    if stage != "MQL":
        rows.append({**base, "key": f"{pid}:backfill:{stage}",
                     "at": max(evaluated_at, mql_date), "from_stage": "MQL",
                     "to_stage": stage})
    return rows


def downgrade() -> None:
    for table in ("feedback", "handoff_tasks", "sla_timers", "stage_history"):
        op.drop_table(table)
