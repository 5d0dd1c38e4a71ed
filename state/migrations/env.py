"""Alembic environment: migrations run on the connection the store hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from state.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # `alembic` run by hand: the URL comes from -x url=... (never stored in a file).
    url = context.get_x_argument(as_dictionary=True).get("url") or config.attributes["url"]
    with create_engine(url).connect() as fresh:
        _run(fresh)
        fresh.commit()


def _run(connection: object) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,  # type: ignore[arg-type]
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
