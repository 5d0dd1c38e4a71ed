"""model.builder: what it builds is what the class's own __init__ builds (equal, same type,
repr, hash, pickles alike, still frozen), for the classes the pipeline builds per person,
on the worst values; and it refuses classes it cannot build the same way."""

from __future__ import annotations

import dataclasses
import math
import pickle
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.engine.model import (
    AccountContext,
    Activity,
    CrmFacts,
    EngineState,
    PersonInput,
    build_activity,
    build_crm_facts,
    build_person,
    builder,
)

from ..fuzz.strategies import nasty_scalars

WHEN = datetime(2026, 11, 30, 12, tzinfo=UTC)
MOMENTS = st.sampled_from([WHEN, WHEN.replace(tzinfo=None),
                           WHEN.astimezone(timezone(timedelta(hours=5))), None])
BUILT = [(Activity, build_activity), (CrmFacts, build_crm_facts), (PersonInput, build_person)]


def _same(made: Any, built: Any) -> None:
    assert type(built) is type(made)
    assert repr(built) == repr(made)   # repr: NaN fields compare unequal to themselves
    assert dataclasses.astuple(built) == dataclasses.astuple(made) or \
        repr(dataclasses.astuple(built)) == repr(dataclasses.astuple(made))
    assert repr(pickle.loads(pickle.dumps(built))) == repr(made)
    name = dataclasses.fields(made)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, name, None)


@settings(max_examples=400, deadline=None, database=None, derandomize=True)
@given(st.lists(st.one_of(nasty_scalars, MOMENTS,
                          st.dictionaries(st.text(max_size=5), nasty_scalars, max_size=3)),
                min_size=9, max_size=9))
def test_what_builder_builds_is_what_the_class_builds(values: list[Any]) -> None:
    for cls, build in BUILT:
        count = len(dataclasses.fields(cls))
        made, built = cls(*values[:count]), build(*values[:count])
        _same(made, built)
        names = [f.name for f in dataclasses.fields(cls)]
        _same(made, build(**dict(zip(names, values, strict=False))))


def test_the_pipeline_s_values_build_alike_and_hash_alike() -> None:
    details = {"url": "https://x.example/pricing", "n": math.nan, "nul": "\x00", "é": "😀"}
    act = (("page_view", WHEN, details, "hubspot"), ("form_submit", WHEN, {}, ""))
    for values in act:
        _same(Activity(*values), build_activity(*values))
    facts = ("005x", True, False, None, "Open", None, False, True, False)
    _same(CrmFacts(*facts), build_crm_facts(*facts))
    assert hash(build_crm_facts(*facts)) == hash(CrmFacts(*facts))
    person = ("42", {"email": "a@b.co", "employees": 10**18}, tuple(build_activity(*a)
                                                                    for a in act),
              CrmFacts(*facts), AccountContext("001x", "005y", "b.co"), EngineState("MQL"),
              WHEN)
    _same(PersonInput(*person), build_person(*person))


def test_a_field_left_out_takes_the_class_default_and_a_required_one_is_refused() -> None:
    """As the class's own __init__: a field added later with a default, and not passed by
    the pipeline's calls, must not make every person's evaluation fail."""
    @dataclass(frozen=True, slots=True)
    class Grown:
        kind: str
        count: int = 3
        tags: list[str] = dataclasses.field(default_factory=list)

    build = builder(Grown)
    first, second = build("a"), build("a")
    assert first == Grown("a") and first.tags == [] and first.tags is not second.tags
    assert build("b", tags=["x"]) == Grown("b", tags=["x"]) and build("c", 4).count == 4
    with pytest.raises(TypeError):
        build(count=1)
    with pytest.raises(TypeError):
        build_activity("page_view")
    assert build_activity("page_view", WHEN) == Activity("page_view", WHEN)
    assert build_crm_facts(owner_id="005x") == CrmFacts(owner_id="005x")


def test_builder_refuses_what_it_would_build_otherwise() -> None:
    @dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError(self.value)

    @dataclass(slots=True)
    class Mutable:
        value: int

    @dataclass(frozen=True)
    class NoSlots:
        value: int

    @dataclass(frozen=True, slots=True)
    class Derived:
        value: int
        twice: int = dataclasses.field(init=False, default=0)

    for cls in (Checked, Mutable, NoSlots, Derived):
        with pytest.raises(TypeError):
            builder(cls)
