"""Scoring: points per activity with filters, caps, decay, floor, recency, penalties."""

from __future__ import annotations

from datetime import timedelta

from syncagent.engine import Rules
from syncagent.engine.rule_files import ScoringFile
from syncagent.engine.scoring import compile_scoring, score, segment

from .conftest import NOW
from .helpers import act


def test_shipped_points_per_activity(rules: Rules) -> None:
    sc = rules.compiled.scoring
    one = {"form_submission": 50, "webinar_attended": 20, "file_download": 3, "email_click": 3,
           "call_attempted": 2, "task_completed": 5}
    for kind, points in one.items():
        assert score([act(kind)], {}, sc, NOW).score == points + 15  # + recency (today)


def test_filters_pick_the_first_matching_rule(rules: Rules) -> None:
    sc = rules.compiled.scoring
    pricing = score([act("page_view", url="https://x.com/pricing")], {}, sc, NOW)
    blog = score([act("page_view", url="https://x.com/blog/post")], {}, sc, NOW)
    assert pricing.by_category["web"] == 10
    assert "pricing-or-demo-page" in [c.rule for c in pricing.contributors]
    assert blog.by_category["web"] == 1


def test_categories_are_capped(rules: Rules) -> None:
    views = [act("page_view", 0, url="https://x.com/pricing") for _ in range(20)]
    result = score(views, {}, rules.compiled.scoring, NOW)
    assert result.by_category["web"] == 40
    assert any("web capped at 40" in r for r in result.reasons)


def test_half_life_halves_points(rules: Rules) -> None:
    result = score([act("form_submission", 30)], {}, rules.compiled.scoring, NOW)
    assert result.by_category["forms"] == 25


def test_linear_decay_reaches_zero() -> None:
    spec = ScoringFile.model_validate({
        "categories": [{"name": "c"}], "decay": {"kind": "linear", "days_to_zero": 10},
        "activities": [{"name": "f", "kind": "form_submission", "points": 50, "category": "c"}]})
    sc = compile_scoring(spec)
    assert score([act("form_submission", 5)], {}, sc, NOW).score == 25
    assert score([act("form_submission", 11)], {}, sc, NOW).score == 0


def test_score_is_floored_at_zero(rules: Rules) -> None:
    result = score([act("unsubscribe", 1), act("email_click", 1)], {}, rules.compiled.scoring, NOW)
    assert result.score == 0
    assert "floored at 0" in result.reasons


def test_penalties_do_not_decay(rules: Rules) -> None:
    form = act("form_submission", 0)
    unsubscribe = act("unsubscribe", 0)
    soon = score([form, unsubscribe], {}, rules.compiled.scoring, NOW + timedelta(days=1))
    assert soon.by_category["penalties"] == -50
    later = score([form, unsubscribe], {}, rules.compiled.scoring, NOW + timedelta(days=300))
    assert later.by_category["penalties"] == -50


def test_profile_penalties_for_competitor_and_free_mail(rules: Rules) -> None:
    acts = [act("form_submission"), act("meeting_set")]
    normal = score(acts, {"email_domain": "northwind.io"}, rules.compiled.scoring, NOW).score
    free = score(acts, {"email_domain": "gmail.com"}, rules.compiled.scoring, NOW).score
    rival = score(acts, {"email_domain": "rivalcrm.com"}, rules.compiled.scoring, NOW).score
    assert free == normal - 20
    assert rival == 0 < normal


def test_sales_signals_count(rules: Rules) -> None:
    result = score([act("demo_completed", 0), act("opportunity_created", 0)], {},
                   rules.compiled.scoring, NOW)
    assert result.by_category["sales"] == 90


def test_recency_bands(rules: Rules) -> None:
    sc = rules.compiled.scoring
    assert score([act("email_click", 1)], {}, sc, NOW).by_category.get("recency") == 15
    assert score([act("email_click", 10)], {}, sc, NOW).by_category.get("recency") == 10
    assert "recency" not in score([act("email_click", 60)], {}, sc, NOW).by_category


def test_top_contributors_are_sorted_by_effect(rules: Rules) -> None:
    result = score([act("email_click"), act("form_submission"), act("meeting_set")], {},
                   rules.compiled.scoring, NOW)
    assert [c.rule for c in result.contributors][:2] == ["form-submission", "meeting-set"]


def test_recycle_cutoff_resets_or_scales_older_points(rules: Rules) -> None:
    acts = [act("form_submission", 2), act("email_click", 0.1)]
    cutoff = NOW - timedelta(days=1)
    reset = score(acts, {}, rules.compiled.scoring, NOW, cutoff, 0.0)
    halved = score(acts, {}, rules.compiled.scoring, NOW, cutoff, 0.5)
    assert "forms" not in reset.by_category
    assert 20 < halved.by_category["forms"] < 25


def test_segments_are_fit_by_intent_quadrants(rules: Rules) -> None:
    sc = rules.compiled.scoring
    b, c = 8, 5  # grade ranks of B and C
    assert segment(b, 60, sc).segment == "sales-now"
    assert segment(b, 10, sc).segment == "nurture-then-sales"
    assert segment(c, 60, sc).segment == "other-offers"
    assert segment(c, 10, sc).segment == "leave"
    assert "grade B meets B" in segment(b, 60, sc).reason
