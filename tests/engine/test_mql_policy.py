"""lifecycle.yaml `mql.policy`: an MQL on score alone, grade alone, either, or both."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from syncagent.engine import Rules, evaluate, load_rules
from syncagent.engine.problems import MappingError

from .conftest import NOW
from .helpers import POOR_FIT, act, hot_activities, person


def _with_policy(folder: Path, policy: str) -> Rules:
    path = folder / "lifecycle.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["mql"]["policy"] = policy
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_rules(folder)


CASES = {  # (good fit?, hot?) -> MQL under each policy
    "grade_and_score": {(True, True): True, (True, False): False, (False, True): False},
    "score": {(True, True): True, (True, False): False, (False, True): True},
    "grade": {(True, True): True, (True, False): True, (False, True): False},
    "grade_or_score": {(True, True): True, (True, False): True, (False, True): True},
}


@pytest.mark.parametrize("policy", list(CASES))
def test_each_policy_decides_on_what_it_names(mappings_copy: Path, policy: str) -> None:
    rules = _with_policy(mappings_copy, policy)
    for (good_fit, hot), expected in CASES[policy].items():
        activities = hot_activities() if hot else [act("form_submission", 3)]
        who = person(activities=activities) if good_fit else \
            person(profile=POOR_FIT, activities=activities)
        decision, _ = evaluate(who, rules, NOW)
        assert (decision.stage.stage == "MQL") is expected, (policy, good_fit, hot,
                                                             decision.stage.reason)
        if expected:
            assert "≥" in decision.stage.reason


def test_an_unknown_policy_names_the_file_and_the_choices(mappings_copy: Path) -> None:
    with pytest.raises(MappingError) as caught:
        _with_policy(mappings_copy, "score_only")
    text = str(caught.value)
    assert "lifecycle.yaml:" in text and "did you mean 'score'" in text
