"""iso_ms renders through isoformat (faster than strftime, and called twice per record read);
it must give what the strftime rendering gave, for any instant and any zone."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from syncagent.sandbox.hubspot.properties import iso_ms


def _strftime(moment: datetime) -> str:
    """The rendering as first written: strftime in UTC, milliseconds truncated, Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


def test_iso_ms_is_the_strftime_rendering() -> None:
    rng = random.Random(18)
    start = datetime(1, 1, 2, tzinfo=UTC)
    for _ in range(20_000):
        moment = start + timedelta(microseconds=rng.randrange(0, 315_000_000_000_000_000))
        if rng.random() < 0.4:
            moment = moment.astimezone(timezone(timedelta(minutes=rng.randrange(-720, 721))))
        assert iso_ms(moment) == _strftime(moment)
    for moment in (datetime(2026, 12, 1, 23, 59, 59, 999_999, tzinfo=UTC),
                   datetime(999, 12, 31, 23, 59, 59, 1_000, tzinfo=UTC),
                   datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))):
        assert iso_ms(moment) == _strftime(moment)
