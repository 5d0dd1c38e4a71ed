"""Mapping file fuzz: the shipped mapping files with nodes replaced, deleted or added give
MappingError (file and line per problem), never a crash; random regexes are either refused
by the RE2 check or run safely on hostile text."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from syncagent.engine import load_rules
from syncagent.engine.loader import FILES
from syncagent.engine.operators import Condition, compile_condition, regex_problem
from tests.fuzz.conftest import FUZZ
from tests.fuzz.guard import only_our_errors
from tests.fuzz.strategies import ROOT, json_values, mutated, nasty_text

SHIPPED = {name: yaml.safe_load((ROOT / "mappings" / name).read_text()) for name in FILES}
mapping_values = st.one_of(json_values, st.sampled_from(
    ["regex", "equals", "(a)\\1", "(?=x)", "(.*a){12}$", "[", "+1", "-1/3", "B", "MQL",
     "page_view", "integer", "two_way", [50, 10], {"field": "title", "op": "regex",
                                                   "value": "(.*a){12}$"}]).map(copy.deepcopy))
# deepcopy: a later mutation may add keys into a drawn list or dict; the literal must not change
regex_atoms = st.sampled_from(["a", ".", "*", "+", "?", "(", ")", "[", "]", "{2,}", "{12}",
                               "|", "^", "$", "\\b", "\\1", "(?=", "(?i)", "\\d", "é",
                               "\ud800", "\x00", "[[:alpha:]]", "(?P<n>", "\\", "{"])


def _load(name: str, document: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for file in FILES:
            data = document if file == name else SHIPPED[file]
            (root / file).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        load_rules(root)


@FUZZ
@given(st.sampled_from(sorted(FILES)).flatmap(
    lambda name: st.tuples(st.just(name), mutated(SHIPPED[name], mapping_values))))
def test_fuzzed_mapping_files_give_mapping_errors(case: tuple[str, Any]) -> None:
    name, document = case
    only_our_errors("mappings", lambda: _load(name, document))


@FUZZ
@given(st.lists(regex_atoms, max_size=12).map("".join), nasty_text)
def test_fuzzed_regexes_are_refused_or_run_safely(pattern: str, text: str) -> None:
    def case() -> None:
        if regex_problem(pattern) is None:
            matches = compile_condition(Condition(field="t", op="regex", value=pattern))
            matches({"t": text})

    only_our_errors("regex", case)
