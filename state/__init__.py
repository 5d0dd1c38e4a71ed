"""The agent's memory: SQLAlchemy models, the store (the one ORM user) and Alembic migrations."""

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
