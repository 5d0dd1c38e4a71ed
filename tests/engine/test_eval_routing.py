"""sla_may_reassign's loop answers as the generator it replaced, on the shipped rules and on
rules where a pool or territory rule allows reassigning, for generated facts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.engine import load_rules
from syncagent.engine.routing import CompiledRoute, CompiledRouting, sla_may_reassign

from ..fuzz.strategies import nasty_scalars
from .conftest import SHIPPED

SHIPPED_RT = load_rules(SHIPPED).compiled.routing


def _slow(rt: CompiledRouting, facts: Mapping[str, Any]) -> bool:
    pooled = (r for r in rt.rules if r.kind in ("pool", "territory") and r.applies(facts))
    rule = next(pooled, None)
    return rule is not None and rule.allow_reassign


def _allowing(rt: CompiledRouting) -> CompiledRouting:
    """The rules with every second pool or territory rule allowing reassignment."""
    rules = tuple(CompiledRoute(r.name, r.applies, r.kind, r.target, i % 2 == 0)
                  for i, r in enumerate(rt.rules))
    return CompiledRouting(rt.min_stage_rank, rt.min_stage, rt.fallback_queue, rules,
                           rt.pools, rt.sla)


FACTS = st.fixed_dictionaries({}, optional={
    "country": st.one_of(st.sampled_from(["US", "CA", "GB", "de", " FR ", "IN"]), nasty_scalars),
    "employees": st.one_of(st.sampled_from([5, 999, 1000, 10**6, "1000"]), nasty_scalars),
})


@settings(max_examples=500, deadline=None, database=None, derandomize=True)
@given(FACTS)
def test_sla_may_reassign_answers_as_before(facts: dict[str, Any]) -> None:
    for rt in (SHIPPED_RT, _allowing(SHIPPED_RT)):
        assert sla_may_reassign(rt, facts) is _slow(rt, facts)


def test_the_first_pool_or_territory_rule_that_applies_decides() -> None:
    rt = _allowing(SHIPPED_RT)
    answers = {sla_may_reassign(rt, {"country": c, "employees": e})
               for c in ("US", "GB", "IN") for e in (5, 5000)}
    assert answers == {True, False}
