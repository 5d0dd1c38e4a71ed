"""How a chunk's mirror rows reach the mapping: as they are when stamped, stamped at the epoch
when the mirror holds no modstamp (a record only the agent has written)."""

from __future__ import annotations

from datetime import UTC, datetime

from state.store import MirrorRow
from syncagent.pipeline.decide import EPOCH, _as_record

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_a_stamped_row_is_read_as_it_is_an_unstamped_one_at_the_epoch() -> None:
    stamped = MirrorRow("salesforce", "Lead", "00Q1", {"Email": "p@x.com"}, T0)
    assert _as_record(stamped) is stamped
    unstamped = MirrorRow("hubspot", "contacts", "7", {"email": "\x00é"}, None)
    record = _as_record(unstamped)
    assert (record.system, record.object, record.fields, record.modstamp, record.deleted) == (
        "hubspot", "contacts", {"email": "\x00é"}, EPOCH, False)
    assert record.fields is unstamped.fields
