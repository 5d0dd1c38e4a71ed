"""The compact id set a full reconcile hands the pipeline (connectors/idset.py)."""

from __future__ import annotations

import tracemalloc

from connectors.idset import IdSet


def test_every_id_read_is_in_and_no_other_is() -> None:
    ids = [f"00Q{i:012d}AAA" for i in range(0, 20_000, 2)]
    present = IdSet(iter(ids))            # a generator: the ids arrive page by page
    assert len(present) == 10_000
    assert all(rid in present for rid in ids)
    assert not any(f"00Q{i:012d}AAA" in present for i in range(1, 20_000, 2))
    assert "" not in present and None not in present and 5 not in present


def test_an_empty_org_and_repeated_ids() -> None:
    assert len(IdSet()) == 0 and "00Q1" not in IdSet()
    twice = IdSet(["a", "b", "a"])
    assert len(twice) == 2 and "a" in twice and "b" in twice


def _traced_build(count: int) -> tuple[IdSet, int, int]:
    """An IdSet of `count` Salesforce-shaped ids, and the bytes traced after and at peak."""
    ids = (f"00Q{i:015d}" for i in range(count))
    tracemalloc.start()
    try:
        present = IdSet(ids)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return present, held, peak


def test_it_holds_a_few_bytes_an_id_not_a_string_each() -> None:
    present, held, _peak = _traced_build(100_000)
    assert len(present) == 100_000
    assert held < 100_000 * 12      # a frozenset of the same ids holds ~10 MB


def test_building_it_never_holds_every_hash_as_a_python_int() -> None:
    """The build's peak is the sorted runs and the result (8 bytes an id each), not a list
    of a Python int per id (~44 bytes an id: 4.4 MB here, 44 MB for a million-lead org)."""
    present, _held, peak = _traced_build(100_000)
    assert len(present) == 100_000
    assert peak < 100_000 * 24


def test_ids_across_many_runs_and_repeated_across_runs() -> None:
    """Ids spread over several sorted runs (and repeated in different runs) are each found
    once; ids never read are not."""
    ids = [f"003{i:012d}" for i in range(30_000)]
    present = IdSet(ids + ids[::7])
    assert len(present) == 30_000
    assert all(rid in present for rid in ids)
    assert not any(f"003{i:012d}" in present for i in range(30_000, 31_000))
