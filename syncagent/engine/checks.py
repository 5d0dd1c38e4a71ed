"""Checks across entries and files: duplicate names, broken references, conditions on unknown
facts or values, entries that can never match, and thresholds no person can reach.

Each check runs only when the files it reads parsed, so one broken file does not hide the
others' problems.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from syncagent.engine.grading import compile_grading
from syncagent.engine.model import STAGE_RANK
from syncagent.engine.operators import GRADE_RANK, GRADES, Condition
from syncagent.engine.problems import Problem, did_you_mean
from syncagent.engine.ranges import problems as range_problems
from syncagent.engine.rule_files import (
    DISQUALIFIED_REASONS,
    FILES,
    LEAD_STATUSES,
    MAPPED_OBJECTS,
    ActivityRule,
    FieldsFile,
    GradingFile,
    LifecycleFile,
    NurtureFile,
    ProfileRule,
    RoutingFile,
    ScoringFile,
)
from syncagent.engine.scoring import compile_scoring, early_rule_name
from syncagent.engine.yamlload import LoadedYaml, PathKey

DERIVED_FACTS = ("email_domain",)
LATER_FACTS = ("persona", "profile", "grade", "score", "segment", "stage", "lead_status",
               "disqualified_reason")


class _Checker:
    def __init__(self, loaded: dict[str, LoadedYaml], models: dict[str, Any]) -> None:
        self.loaded = loaded
        self.m = models
        self.problems: list[Problem] = []

    def at(self, file: str, path: PathKey, message: str) -> None:
        self.problems.append(self.loaded[file].problem(path, message))

    def unique(self, file: str, path: PathKey, items: list[Any], attr: str, what: str) -> None:
        seen: dict[Any, int] = {}
        for i, item in enumerate(items):
            value = getattr(item, attr)
            key = value.casefold() if isinstance(value, str) else value
            if key in seen:
                first = self.loaded[file].line_of((*path, seen[key]))
                self.at(file, (*path, i, attr),
                        f"duplicate {what} '{value}' (first at line {first}); each {what} "
                        "must be unique: rename or remove one")
            else:
                seen[key] = i

    def reference(self, file: str, path: PathKey, name: str | None, known: Iterable[str],
                  what: str, where: str) -> None:
        options = list(known)
        if name is not None and name not in options:
            self.at(file, path, f"{what} '{name}' is not defined in {where}"
                                f"{did_you_mean(name, options)}")


def check_all(loaded: dict[str, LoadedYaml], models: dict[str, Any]) -> list[Problem]:
    """Run every check whose files parsed, so one broken file does not hide the others'
    problems; the reachability check needs all six and a clean slate."""
    c = _Checker(loaded, models)
    checks = (
        (_check_fields, ("fields.yaml",)),
        (_check_grading, ("fields.yaml", "grading.yaml")),
        (_check_scoring, ("fields.yaml", "scoring.yaml")),
        (_check_lifecycle, ("lifecycle.yaml", "nurture.yaml")),
        (_check_routing, ("fields.yaml", "routing.yaml")),
        (_check_nurture, ("fields.yaml", "nurture.yaml")),
    )
    for check, needs in checks:
        if all(name in models for name in needs):
            check(c)
    if not c.problems and len(models) == len(FILES):
        _check_reachable(c)
    return c.problems


def _check_fields(c: _Checker) -> None:
    spec: FieldsFile = c.m["fields.yaml"]
    c.unique("fields.yaml", ("fields",), spec.fields, "name", "field name")
    names = {f.name for f in spec.fields}
    if "email" not in names:
        c.at("fields.yaml", ("fields",), "no 'email' field; the engine matches and routes "
                                        "by email, add a field named email")
    for i, f in enumerate(spec.fields):
        if not f.remote_names():
            c.at("fields.yaml", ("fields", i), f"field '{f.name}' maps to nothing; give a "
                                               "salesforce or hubspot name")
        if f.translate and f.type not in ("string", "picklist"):
            c.at("fields.yaml", ("fields", i, "translate"),
                 f"field '{f.name}' has translations but type '{f.type}'; use type picklist")
        c.unique("fields.yaml", ("fields", i, "translate"), f.translate, "canonical",
                 "translation")
        mapped = {system: True for system, _object in f.remote_names()}
        for path, message in range_problems(f.name, f.type, f.ranges, mapped,
                                            bool(f.translate)):
            c.at("fields.yaml", ("fields", i, *path), message)
    for key, system in MAPPED_OBJECTS.items():
        seen: dict[str, str] = {}
        for i, f in enumerate(spec.fields):
            remote = f.remote_names().get(key)
            if remote and remote in seen:
                c.at("fields.yaml", ("fields", i), f"{system} field '{remote}' is already "
                     f"mapped by '{seen[remote]}'; map each remote field once")
            elif remote:
                seen[remote] = f.name


def _facts(c: _Checker, later: bool) -> list[str]:
    base = [f.name for f in c.m["fields.yaml"].fields] + list(DERIVED_FACTS)
    return base + list(LATER_FACTS) if later else base


def _conditions(c: _Checker, file: str, path: PathKey, conditions: list[Condition],
                facts: list[str], why_unavailable: str) -> None:
    grading: GradingFile | None = c.m.get("grading.yaml")
    scoring: ScoringFile | None = c.m.get("scoring.yaml")
    allowed_values: dict[str, list[str]] = {
        "stage": list(STAGE_RANK),
        "grade": list(GRADES),
        "lead_status": list(LEAD_STATUSES),
        "disqualified_reason": list(DISQUALIFIED_REASONS),
    }
    if grading is not None:  # a broken file is reported on its own; skip what it defines
        allowed_values["persona"] = [p.name for p in grading.personas]
        allowed_values["profile"] = [p.name for p in grading.profiles]
    if scoring is not None:
        allowed_values["segment"] = list(scoring.segments.names.in_order())
    for i, cond in enumerate(conditions):
        here = (*path, i)
        if cond.field not in facts:
            if cond.field in LATER_FACTS:
                c.at(file, (*here, "field"), f"'{cond.field}' is not known yet {why_unavailable}"
                     "; use a profile field")
            else:
                c.at(file, (*here, "field"), f"unknown field '{cond.field}'"
                                             f"{did_you_mean(cond.field, facts)}")
            continue
        allowed = allowed_values.get(cond.field)
        if allowed is None or cond.op not in ("equals", "in"):
            continue
        values = cond.value if isinstance(cond.value, list) else [cond.value]
        for v in values:
            if str(v) not in allowed:
                c.at(file, (*here, "value"), f"'{v}' is not a known {cond.field}"
                                             f"{did_you_mean(str(v), allowed)}")


def _catch_all(c: _Checker, file: str, path: PathKey, items: list[Any], what: str,
               group: Any = None, terminal: Any = None) -> None:
    """Entries after an entry with no conditions (of the same group) can never match."""
    open_groups: dict[Any, str] = {}
    for i, item in enumerate(items):
        key = group(item) if group else None
        if key in open_groups:
            c.at(file, (*path, i), f"{what} '{item.name}' can never match: '{open_groups[key]}' "
                                   "above it has no conditions and matches first; move it up")
        elif not item.when and (terminal is None or terminal(item)):
            open_groups[key] = item.name


def _check_grading(c: _Checker) -> None:
    spec: GradingFile = c.m["grading.yaml"]
    facts = _facts(c, later=False)
    c.unique("grading.yaml", ("profiles",), spec.profiles, "name", "profile")
    c.unique("grading.yaml", ("personas",), spec.personas, "name", "persona")
    _catch_all(c, "grading.yaml", ("profiles",), spec.profiles, "profile")
    for i, p in enumerate(spec.profiles):
        _conditions(c, "grading.yaml", ("profiles", i, "when"), p.when, facts,
                    "when a profile is chosen")
        c.unique("grading.yaml", ("profiles", i, "criteria"), p.criteria, "name", "criterion")
        for j, crit in enumerate(p.criteria):
            _conditions(c, "grading.yaml", ("profiles", i, "criteria", j, "when"), crit.when,
                        facts, "while grading")
    for i, persona in enumerate(spec.personas):
        _conditions(c, "grading.yaml", ("personas", i, "when"), persona.when, facts,
                    "when personas are chosen")


def _check_scoring(c: _Checker) -> None:
    spec: ScoringFile = c.m["scoring.yaml"]
    file = "scoring.yaml"
    c.unique(file, ("categories",), spec.categories, "name", "category")
    categories = [cat.name for cat in spec.categories]
    rules: list[ActivityRule | ProfileRule] = [*spec.activities, *spec.profile]
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        section = "activities" if i < len(spec.activities) else "profile"
        index = i if section == "activities" else i - len(spec.activities)
        if rule.name.casefold() in seen or rule.name == "recency":
            c.at(file, (section, index, "name"), f"duplicate rule name '{rule.name}'; each "
                 "scoring rule needs its own name (it is shown as a reason)")
        seen[rule.name.casefold()] = i
        c.reference(file, (section, index, "category"), rule.category, categories, "category",
                    "categories")
        if rule.points == 0:
            c.at(file, (section, index, "points"), f"rule '{rule.name}' gives 0 points; "
                 "remove it or give it points")
    _catch_all(c, file, ("activities",), list(spec.activities), "rule", lambda r: r.kind)
    for i, prule in enumerate(spec.profile):
        _conditions(c, file, ("profile", i, "when"), prule.when,
                    [*_facts(c, False), "persona", "profile", "grade"], "when scoring")
    early_names = {early_rule_name(r.name, b.within_days_of_creation).casefold()
                   for r in spec.activities for b in r.early}
    for i, rule in enumerate(rules):
        if rule.name.casefold() in early_names:
            section = "activities" if i < len(spec.activities) else "profile"
            index = i if section == "activities" else i - len(spec.activities)
            c.at(file, (section, index, "name"), f"rule name '{rule.name}' is the name an "
                 "early band scores under (it is shown as a reason); rename the rule")
    for i, activity in enumerate(spec.activities):
        _check_early(c, i, activity)
    if spec.recency:
        _check_recency(c, spec, categories)
    for i, alert in enumerate(spec.alerts):
        _conditions(c, file, ("alerts", i, "when"), alert.when, _facts(c, True), "")
    c.unique(file, ("alerts",), spec.alerts, "name", "alert")
    if len({q.casefold() for q in spec.segments.names.in_order()}) != 4:
        c.at(file, ("segments", "names"), "segment names must be four different names")


def _ascending_days(c: _Checker, path: PathKey, days: list[float], what: str) -> bool:
    """Bands are listed most recent first, each with its own limit; False after a problem."""
    for j, (before, after) in enumerate(itertools.pairwise(days), start=1):
        if after == before:
            c.at("scoring.yaml", (*path, j), f"two {what} bands within {after:g} days; "
                 "each band needs its own number of days: change or remove one")
            return False
        if after < before:
            c.at("scoring.yaml", (*path, j), f"{what} band within {after:g} days comes after "
                 f"the band within {before:g}; list the bands from the fewest days to the most")
            return False
    return True


def _check_early(c: _Checker, i: int, rule: ActivityRule) -> None:
    path: PathKey = ("activities", i, "early")
    if not rule.early:
        return
    if rule.points < 0:
        c.at("scoring.yaml", path, f"rule '{rule.name}' is a penalty; early bands are for "
             "rules that earn points, remove them")
        return
    _ascending_days(c, path, [b.within_days_of_creation for b in rule.early], "early")
    for j, band in enumerate(rule.early):
        if band.points <= 0:
            c.at("scoring.yaml", (*path, j, "points"), f"early band of '{rule.name}' gives "
                 f"{band.points:g} points; give it more than 0, like the rule itself")


def _check_recency(c: _Checker, spec: ScoringFile, categories: list[str]) -> None:
    file, recency = "scoring.yaml", spec.recency
    assert recency is not None
    c.reference(file, ("recency", "category"), recency.category, categories, "category",
                "categories")
    cap = next((cat.cap for cat in spec.categories if cat.name == recency.category), None)
    for j, band in enumerate(recency.bands):
        if band.points < 0:
            c.at(file, ("recency", "bands", j, "points"), "recency points must not be "
                 "negative (scores must not rise as activity ages); use 0 or more")
    if not _ascending_days(c, ("recency", "bands"), [b.within_days for b in recency.bands],
                           "recency"):
        return
    for j, (a, b) in enumerate(itertools.pairwise(recency.bands), start=1):
        if b.points > a.points:
            c.at(file, ("recency", "bands", j, "points"),
                 f"recency band within {b.within_days:g} days gives more points than the "
                 f"band within {a.within_days:g}; older activity must not score higher")
    top = max([b.points for b in recency.bands] + [recency.max_points or 0])
    if cap is not None and top > cap:
        where: PathKey = ("recency", "max_points") if recency.max_points is not None else \
            ("recency", "bands", next(j for j, b in enumerate(recency.bands) if b.points == top),
             "points")
        c.at(file, where, f"recency gives up to {top:g} points but category "
             f"'{recency.category}' is capped at {cap:g}; raise the cap or lower the points")


def _check_lifecycle(c: _Checker) -> None:
    spec: LifecycleFile = c.m["lifecycle.yaml"]
    file = "lifecycle.yaml"
    d = spec.disqualify
    for section, statuses in (("sal", spec.sal.lead_status_in), ("sql", spec.sql.lead_status_in),
                              ("disqualify", d.lead_status_in)):
        for i, status in enumerate(statuses):
            if status not in LEAD_STATUSES:
                c.at(file, (section, "lead_status_in", i), f"'{status}' is not a Lead Status "
                     f"value{did_you_mean(status, LEAD_STATUSES)}")
    used: dict[str, str] = {}
    for section, statuses in (("sal", spec.sal.lead_status_in), ("sql", spec.sql.lead_status_in),
                              ("disqualify", d.lead_status_in)):
        for i, status in enumerate(statuses):
            if status in used and used[status] != section:
                c.at(file, (section, "lead_status_in", i), f"Status '{status}' is already "
                     f"used by {used[status]}; a status can mean only one thing")
            used.setdefault(status, section)
    for key, reasons in (("recycle_reasons", d.recycle_reasons),
                         ("disqualify_reasons", d.disqualify_reasons)):
        for i, reason in enumerate(reasons):
            if reason not in DISQUALIFIED_REASONS:
                c.at(file, ("disqualify", key, i), f"'{reason}' is not a Disqualified_Reason__c "
                     f"value{did_you_mean(reason, DISQUALIFIED_REASONS)}")
            elif key == "disqualify_reasons" and reason in d.recycle_reasons:
                c.at(file, ("disqualify", key, i), f"reason '{reason}' is in both "
                     "recycle_reasons and disqualify_reasons; keep it in one")
    tracks = [t.name for t in c.m["nurture.yaml"].tracks]
    c.reference(file, ("disqualify", "recycle_track"), d.recycle_track, tracks, "track",
                "nurture.yaml")


def _check_routing(c: _Checker) -> None:
    spec: RoutingFile = c.m["routing.yaml"]
    file = "routing.yaml"
    c.unique(file, ("rules",), spec.rules, "name", "routing rule")
    c.unique(file, ("pools",), spec.pools, "name", "pool")
    pools = [p.name for p in spec.pools]
    for i, rule in enumerate(spec.rules):
        _conditions(c, file, ("rules", i, "when"), rule.when, _facts(c, True), "")
        c.reference(file, ("rules", i, "assign", "pool"), rule.assign.pool, pools, "pool",
                    "pools")
    # Only a queue always succeeds; other assignments fall through when nobody is available.
    _catch_all(c, file, ("rules",), spec.rules, "rule",
               terminal=lambda r: r.assign.queue is not None)
    for i, pool in enumerate(spec.pools):
        c.unique(file, ("pools", i, "members"), pool.members, "user", "pool member")


def _check_nurture(c: _Checker) -> None:
    spec: NurtureFile = c.m["nurture.yaml"]
    file = "nurture.yaml"
    c.unique(file, ("tracks",), spec.tracks, "name", "track")
    c.unique(file, ("tracks",), spec.tracks, "hubspot_list", "HubSpot list")
    c.unique(file, ("tracks",), spec.tracks, "nurture_track_value", "Nurture_Track__c value")
    for i, track in enumerate(spec.tracks):
        _conditions(c, file, ("tracks", i, "when"), track.when, _facts(c, True), "")
    _catch_all(c, file, ("tracks",), spec.tracks, "track")


def _check_reachable(c: _Checker) -> None:
    """Thresholds that no person could ever meet are mistakes, not strictness."""
    grading = compile_grading(c.m["grading.yaml"])
    scoring = compile_scoring(c.m["scoring.yaml"])
    best_grade = grading.best_rank()
    best_score = scoring.max_score()
    lifecycle: LifecycleFile = c.m["lifecycle.yaml"]
    segments = c.m["scoring.yaml"].segments
    grade_checks: list[tuple[str, PathKey, str | None]] = [
        ("lifecycle.yaml", ("mql", "min_grade"), lifecycle.mql.min_grade),
        ("lifecycle.yaml", ("lead", "min_grade"), lifecycle.lead.min_grade),
        ("scoring.yaml", ("segments", "fit_min_grade"), segments.fit_min_grade),
    ]
    # One problem per unreachable value, at its first use, naming the other places: the
    # cause (the criteria or the caps) is one, so the admin gets one clear error.
    grade_misses = [(f, p, w) for f, p, w in grade_checks
                    if w is not None and GRADE_RANK[w] > best_grade]
    if grade_misses:
        file, path, wanted = grade_misses[0]
        also = _also(grade_misses[1:])
        c.at(file, path, f"grade {wanted} can never be reached: the best grade any profile "
             f"gives is {GRADES[best_grade]}; lower it or add grading criteria{also}")
    score_checks: list[tuple[str, PathKey, float]] = [
        ("lifecycle.yaml", ("mql", "min_score"), lifecycle.mql.min_score),
        ("lifecycle.yaml", ("lead", "min_score"), lifecycle.lead.min_score),
        ("scoring.yaml", ("segments", "intent_min_score"), segments.intent_min_score),
    ]
    score_misses = [(f, p, n) for f, p, n in score_checks if n > best_score]
    if score_misses:
        file, path, needed = score_misses[0]
        also = _also(score_misses[1:])
        c.at(file, path, f"score {needed:g} can never be reached: the category caps add up "
             f"to {best_score:g}; lower it or raise the caps in scoring.yaml{also}")


def _also(rest: list[tuple[str, PathKey, Any]]) -> str:
    if not rest:
        return ""
    places = ", ".join(f"{f} {'.'.join(str(p) for p in path)}" for f, path, _ in rest)
    return f" (also unreachable: {places})"
