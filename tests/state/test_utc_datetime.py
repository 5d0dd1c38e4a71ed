"""UTCDateTime on SQLite binds the text SQLAlchemy's own DATETIME writes, in one step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite

from state.models import UTCDateTime

SQLITE = sqlite.dialect()
GENERIC = sqlite.DATETIME().bind_processor(SQLITE)


@pytest.mark.parametrize("moment", [
    datetime(2026, 12, 1, 12, 0, tzinfo=UTC),                    # no microseconds
    datetime(2026, 12, 1, 12, 0, 5, 123, tzinfo=UTC),
    datetime(999, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),            # a year below 1000
    datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-5))),  # not UTC
])
def test_the_sqlite_text_is_sqlalchemys(moment: datetime) -> None:
    bind = UTCDateTime().bind_processor(SQLITE)
    assert bind is not None and GENERIC is not None
    assert bind(moment) == GENERIC(moment.astimezone(UTC).replace(tzinfo=None))
    assert bind(None) is None


def test_a_naive_datetime_is_refused() -> None:
    bind = UTCDateTime().bind_processor(SQLITE)
    assert bind is not None
    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2026, 12, 1, 12, 0))
