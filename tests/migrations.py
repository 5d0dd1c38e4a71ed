"""Moving a test's state DB to one migration revision (up or down), as Alembic would."""

from __future__ import annotations

from alembic import command

from state.db import alembic_config
from state.store import StateStore


def migrate(store: StateStore, revision: str, *, down: bool = False) -> None:
    """Upgrade (or, with ``down``, downgrade) the store's DB to ``revision``."""
    with store.engine.connect() as connection:
        config = alembic_config(store.url)
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
        connection.commit()
