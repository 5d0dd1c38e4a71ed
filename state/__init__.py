"""The agent's memory: SQLAlchemy models, the StateStore façade over one store per concern, and
Alembic migrations."""

from state.store import (
    ActivityRow,
    CursorState,
    MirrorRow,
    NewOutboxRow,
    OutboxItem,
    OutboxResult,
    StateStore,
)

__all__ = [
    "ActivityRow",
    "CursorState",
    "MirrorRow",
    "NewOutboxRow",
    "OutboxItem",
    "OutboxResult",
    "StateStore",
]
